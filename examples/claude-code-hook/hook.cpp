// promptlearn-hook: Claude Code's UserPromptSubmit and Stop hooks over one promptlearn file
// (examples/claude-code-hook/README.md).
//
//   promptlearn-hook user-prompt-submit [--db FILE]   stdin: the hook's JSON; stdout: the guidance text
//   promptlearn-hook stop [--db FILE]                 stdin: the hook's JSON; records the outcome
//
// The hook must never get in the user's way: every error is one line in hook.log beside the database,
// nothing is printed, and the exit status is 0. A watchdog ends the process after a few seconds whatever
// it is waiting for.
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "promptlearn/config.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/store/database.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kBusyTimeoutMs = 2000;      // a locked file costs the user at most this per statement
constexpr unsigned kWatchdogSeconds = 6;  // and the whole hook at most this
constexpr std::size_t kTranscriptTailBytes = 2 << 20;
constexpr std::size_t kMaxSessions = 500;  // sessions remembered in the state file (the newest)
constexpr std::int64_t kSessionTtlMs = 7LL * 24 * 3600 * 1000;

// The only process-wide state: the log descriptor the watchdog's signal handler writes to (a signal
// handler can reach nothing else).
int g_log_fd = -1;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void on_watchdog(int) {
  static const char msg[] = "watchdog: the hook took too long and gave up (the prompt passed unchanged)\n";
  if (g_log_fd >= 0) (void)!::write(g_log_fd, msg, sizeof msg - 1);
  ::_exit(0);
}

/// One line per event in hook.log; rotated to hook.log.1 past 1 MB.
class Log {
 public:
  explicit Log(const fs::path& path) : path_(path) {
    std::error_code ec;
    if (fs::file_size(path_, ec) > (1u << 20) && !ec) fs::rename(path_, path_.string() + ".1", ec);
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    g_log_fd = fd_;
  }
  ~Log() {
    if (fd_ >= 0) ::close(fd_);
    g_log_fd = -1;
  }
  void line(const std::string& command, const std::string& what) const {
    if (fd_ < 0) return;
    std::string text = promptlearn::format_rfc3339(now_ms()) + " " + command + ": " + what;
    std::replace(text.begin(), text.end(), '\n', ' ');
    text += '\n';
    (void)!::write(fd_, text.data(), text.size());
  }

 private:
  fs::path path_;
  int fd_ = -1;
};

// ---------------------------------------------------------------- built-in templates

struct BuiltinTemplate {
  const char* id;
  const char* version;
  const char* body;
};

// Guidance added to the prompt's context. "plain" adds nothing: the learner must be able to find out
// that no guidance is best for some prompts.
const BuiltinTemplate kBuiltins[] = {
    {"plain", "1", ""},
    {"structured_task", "1",
     "[promptlearn guidance: structured task]\n"
     "Before acting, restate the task in one sentence, list the constraints you see in the request and in the "
     "code (APIs that must not change, style, performance), and name what \"done\" means. Then do the work in "
     "small verified steps. Finish with a short summary: what changed, where, and anything left open."},
    {"step_by_step", "1",
     "[promptlearn guidance: step by step]\n"
     "Work through this step by step. Read the relevant files before editing them. After each step, check the "
     "result (build, run, or re-read) before moving on. If a step fails, explain why and fix the cause rather "
     "than the symptom. Keep the final answer concise."},
    {"clarify_first", "1",
     "[promptlearn guidance: clarify first]\n"
     "If the request is ambiguous or missing information you would otherwise have to guess (which file, which "
     "behaviour, which version, what the expected output is), first ask at most three short, specific "
     "questions and stop. If it is clear enough, say which assumptions you make in one line and proceed."},
    {"tests_first", "1",
     "[promptlearn guidance: tests first]\n"
     "For code changes: first find or write a test that shows the current problem or pins the requested "
     "behaviour, and run it to see it fail. Then make the smallest change that makes it pass, run the related "
     "tests again, and report the commands you ran and their results. Do not weaken or delete existing tests."},
    {"review_risks", "1",
     "[promptlearn guidance: mind the risks]\n"
     "Before changing anything, look for what this could break: callers of the code you touch, error paths, "
     "concurrency, input validation, and backwards compatibility. Prefer a minimal, reversible change. Mention "
     "any risk you could not rule out."},
};

// ---------------------------------------------------------------- small helpers

std::string read_all(std::istream& in) {
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string uuid_v4() {
  std::random_device rd;
  unsigned char b[16];
  for (int i = 0; i < 16; i += 4) {
    const std::uint32_t r = rd();
    std::memcpy(b + i, &r, 4);
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  char s[37];
  std::snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return s;
}

std::string os_user() {
  if (const passwd* pw = ::getpwuid(::geteuid()); pw != nullptr && pw->pw_name != nullptr) return pw->pw_name;
  for (const char* var : {"USER", "LOGNAME"})
    if (const char* v = std::getenv(var); v != nullptr && *v != '\0') return v;
  return "uid-" + std::to_string(::geteuid());
}

std::uint64_t fnv1a(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string hex64(std::uint64_t v) {
  char s[17];
  std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(v));
  return s;
}

/// The branch checked out in the repository holding `cwd` (walking up to its .git; a worktree's .git
/// file is followed), or "" when unknown or detached.
std::string git_branch(const std::string& cwd) {
  std::error_code ec;
  fs::path dir = cwd;
  for (int depth = 0; depth < 40 && !dir.empty(); ++depth) {
    const fs::path git = dir / ".git";
    fs::path head;
    if (fs::is_directory(git, ec)) {
      head = git / "HEAD";
    } else if (fs::is_regular_file(git, ec)) {
      std::ifstream f(git);
      std::string line;
      std::getline(f, line);
      if (line.rfind("gitdir: ", 0) != 0) return "";
      fs::path gd = line.substr(8);
      head = (gd.is_absolute() ? gd : dir / gd) / "HEAD";
    }
    if (!head.empty()) {
      std::ifstream f(head);
      std::string line;
      std::getline(f, line);
      const std::string prefix = "ref: refs/heads/";
      return line.rfind(prefix, 0) == 0 ? line.substr(prefix.size()) : "";
    }
    if (dir == dir.root_path()) break;
    dir = dir.parent_path();
  }
  return "";
}

// ---------------------------------------------------------------- the implicit reward

/// Lower-case word tokens (letters and digits, 2+ characters) of a prompt.
std::set<std::string> tokens(std::string_view text) {
  std::set<std::string> out;
  std::string cur;
  auto push = [&] {
    if (cur.size() >= 2) out.insert(cur);
    cur.clear();
  };
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c >= 0x80) cur += static_cast<char>(std::tolower(c));
    else push();
  }
  push();
  return out;
}

std::vector<std::uint32_t> token_hashes(std::string_view text) {
  std::vector<std::uint32_t> h;
  for (const auto& t : tokens(text)) h.push_back(static_cast<std::uint32_t>(fnv1a(t)));
  std::sort(h.begin(), h.end());
  h.erase(std::unique(h.begin(), h.end()), h.end());
  return h;
}

double jaccard(const std::vector<std::uint32_t>& a, const std::vector<std::uint32_t>& b) {
  if (a.empty() && b.empty()) return 0;
  std::vector<std::uint32_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  return static_cast<double>(both.size()) / static_cast<double>(a.size() + b.size() - both.size());
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool contains_any(const std::string& text, std::initializer_list<const char*> phrases) {
  for (const char* p : phrases)
    if (text.find(p) != std::string::npos) return true;
  return false;
}

/// How the next prompt of a session judges the previous answer.
enum class FollowUp { neutral, retry, complaint, praise };

FollowUp classify_follow_up(std::string_view prompt, const std::vector<std::uint32_t>& previous_tokens) {
  const std::string p = lower(prompt.substr(0, 2000));
  // Complaints: phrases, not single words ("what's wrong with X" is a new question, not a complaint).
  if (contains_any(p, {"that's wrong", "that is wrong", "thats wrong", "this is wrong", "still wrong", "not what i",
                       "doesn't work", "does not work", "didn't work", "did not work", "doesn't compile",
                       "still fail", "still broken", "still doesn't", "still does not", "still not working",
                       "not working", "you broke", "broke it", "try again", "same error", "same problem",
                       "that's not right", "that is not right", "incorrect", "revert that", "undo that",
                       "that didn't", "it didn't", "wrong again", "no, ", "nope"}) ||
      p.rfind("no ", 0) == 0 || p == "no")
    return FollowUp::complaint;
  const auto now = token_hashes(prompt);
  if (previous_tokens.size() >= 3 && now.size() >= 3 && jaccard(now, previous_tokens) >= 0.6) return FollowUp::retry;
  if (p.size() < 200 && contains_any(p, {"thanks", "thank you", "perfect", "great", "works now", "that works",
                                          "it works", "looks good", "lgtm", "awesome", "nice", "exactly"}))
    return FollowUp::praise;
  return FollowUp::neutral;
}

struct TurnSummary {
  bool found = false;         ///< the transcript was read and holds a turn
  int tool_calls = 0;
  int tool_errors = 0;
  bool interrupted = false;   ///< "[Request interrupted by user...]"
  bool answered = false;      ///< the turn's last assistant message carries text
};

/// Reads the tail of a Claude Code transcript (JSON lines) and sums up the latest turn: everything after
/// the last user message that is a prompt (not a tool result).
TurnSummary summarise_transcript(const std::string& path) {
  TurnSummary s;
  std::ifstream f(path, std::ios::binary);
  if (!f) return s;
  f.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(0, f.tellg()));
  const std::size_t start = size > kTranscriptTailBytes ? size - kTranscriptTailBytes : 0;
  f.seekg(static_cast<std::streamoff>(start));
  std::string line;
  if (start > 0) std::getline(f, line);  // a partial line
  std::vector<json> turn;
  while (std::getline(f, line)) {
    json e = json::parse(line, nullptr, false);
    if (!e.is_object() || !e.contains("message") || !e["message"].is_object()) continue;
    const std::string type = e.value("type", "");
    const json& content = e["message"].contains("content") ? e["message"]["content"] : json();
    bool is_prompt = false;
    if (type == "user" && !e.value("isMeta", false)) {
      if (content.is_string()) {
        is_prompt = content.get<std::string>().rfind("[Request interrupted", 0) != 0;
      } else if (content.is_array()) {
        is_prompt = !content.empty();
        for (const auto& b : content)
          if (!b.is_object() || b.value("type", "") != "text" ||
              b.value("text", "").rfind("[Request interrupted", 0) == 0)
            is_prompt = false;
      }
    }
    if (is_prompt) turn.clear();
    turn.push_back(std::move(e));
  }
  if (turn.empty()) return s;
  s.found = true;
  for (const auto& e : turn) {
    const std::string type = e.value("type", "");
    const json& content = e["message"].contains("content") ? e["message"]["content"] : json();
    auto note_text = [&](const std::string& t) {
      if (t.rfind("[Request interrupted", 0) == 0) s.interrupted = true;
    };
    if (content.is_string()) note_text(content.get<std::string>());
    if (type == "assistant") {
      bool text = false;
      if (content.is_array())
        for (const auto& b : content) {
          if (!b.is_object()) continue;
          const std::string bt = b.value("type", "");
          if (bt == "tool_use") ++s.tool_calls;
          if (bt == "text" && !b.value("text", "").empty()) text = true;
        }
      else if (content.is_string() && !content.get<std::string>().empty())
        text = true;
      s.answered = text;  // the last assistant message decides
    } else if (type == "user" && content.is_array()) {
      for (const auto& b : content) {
        if (!b.is_object()) continue;
        if (b.value("type", "") == "tool_result" && b.value("is_error", false)) ++s.tool_errors;
        if (b.value("type", "") == "text") note_text(b.value("text", ""));
      }
    }
  }
  return s;
}

/// The reward of a finished turn (README.md, "The reward"): 0.75 for an answer, less for failed tool
/// calls and for a turn that ended without an answer; 0.2 when the user interrupted; 0.5 when unknown.
double stop_reward(const TurnSummary& t) {
  if (!t.found) return 0.5;
  if (t.interrupted) return 0.2;
  double r = 0.75;
  if (t.tool_calls > 0) r -= 0.35 * std::min(1.0, static_cast<double>(t.tool_errors) / t.tool_calls);
  if (!t.answered) r -= 0.25;
  return std::clamp(r, 0.0, 1.0);
}

/// The previous answer's reward revised by the next prompt of the same session.
double revise_reward(double reward, FollowUp f) {
  switch (f) {
    case FollowUp::retry:
    case FollowUp::complaint: return std::min(reward, 0.3 * reward);
    case FollowUp::praise: return reward + 0.6 * (1 - reward);
    case FollowUp::neutral: break;
  }
  return reward;
}

const char* follow_up_name(FollowUp f) {
  switch (f) {
    case FollowUp::retry: return "retry";
    case FollowUp::complaint: return "complaint";
    case FollowUp::praise: return "praise";
    case FollowUp::neutral: break;
  }
  return "neutral";
}

// ---------------------------------------------------------------- per-session state (hook-state.json)

/// hook-state.json beside the database, under an exclusive flock for the whole hook run:
///   {"last_jobs_ms": T, "sessions": {"<fnv1a of session_id>": {"interaction_id", "started_ms",
///    "tokens": [hashes of the prompt's words], "reward", "response_ms", "stopped"}}}
/// No prompt text and no raw session id is kept in it.
class StateFile {
 public:
  explicit StateFile(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::close(fd_);
        throw std::runtime_error("the state file " + path.string() + " stayed locked");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::string text;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd_, buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    doc_ = json::parse(text, nullptr, false);
    if (!doc_.is_object()) doc_ = json::object();
    if (!doc_.contains("sessions") || !doc_["sessions"].is_object()) doc_["sessions"] = json::object();
  }
  ~StateFile() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  StateFile(const StateFile&) = delete;
  StateFile& operator=(const StateFile&) = delete;

  json& doc() { return doc_; }
  json* session(const std::string& session_id) {
    auto it = doc_["sessions"].find(hex64(fnv1a(session_id)));
    return it == doc_["sessions"].end() || !it->is_object() ? nullptr : &*it;
  }
  json& put_session(const std::string& session_id) { return doc_["sessions"][hex64(fnv1a(session_id))]; }

  /// Drops old sessions and writes the file in place (still under the lock).
  void save(std::int64_t now) {
    json& sessions = doc_["sessions"];
    std::vector<std::pair<std::int64_t, std::string>> by_age;
    for (auto it = sessions.begin(); it != sessions.end(); ++it)
      by_age.emplace_back(it->is_object() ? it->value("started_ms", std::int64_t{0}) : 0, it.key());
    std::sort(by_age.rbegin(), by_age.rend());
    for (std::size_t i = 0; i < by_age.size(); ++i)
      if (i >= kMaxSessions || now - by_age[i].first > kSessionTtlMs) sessions.erase(by_age[i].second);
    const std::string text = doc_.dump();
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
      throw std::runtime_error(std::string("cannot write the state file: ") + std::strerror(errno));
  }

 private:
  int fd_ = -1;
  json doc_;
};

// ---------------------------------------------------------------- the engine

struct Paths {
  fs::path db, dir, log, state;
};

promptlearn::Config load_config(const std::string& config_path) {
  if (config_path.empty()) return promptlearn::Config::defaults();
  std::ifstream f(config_path);
  if (!f) throw std::runtime_error("cannot read --config " + config_path);
  return promptlearn::Config::from_string(read_all(f));
}

promptlearn::EngineOptions engine_options() {
  promptlearn::EngineOptions o;
  o.busy_timeout_ms = kBusyTimeoutMs;
  return o;
}

/// Registers the built-in templates the file has never seen (a template the user retired stays retired)
/// and returns the active bodies by "id@version".
std::map<std::string, std::string> ensure_templates(promptlearn::LearningEngine& engine, const std::string& db) {
  std::map<std::string, std::string> bodies, active;
  std::set<std::string> known;
  auto load = [&] {
    promptlearn::store::OpenOptions oo;
    oo.create = false;
    oo.read_only = true;
    oo.wal = false;
    oo.busy_timeout_ms = kBusyTimeoutMs;
    promptlearn::store::Database raw(db, oo);
    promptlearn::store::Statement q(raw, "SELECT template_id, version, body, status FROM templates");
    known.clear();
    active.clear();
    while (q.step()) {
      const std::string key = q.column_text(0) + "@" + q.column_text(1);
      known.insert(key);
      if (q.column_text(3) == "active") active[key] = q.column_text(2);
    }
  };
  load();
  bool added = false;
  for (const auto& t : kBuiltins)
    if (!known.count(std::string(t.id) + "@" + t.version)) {
      engine.register_template(t.id, t.version, t.body, "", "", R"({"source": "promptlearn-hook built-in"})");
      added = true;
    }
  if (added) load();
  return active;
}

void record_outcome(promptlearn::LearningEngine& engine, const json& entry, const std::string& command,
                    const Log& log) {
  json outcome = json::object();
  if (entry.contains("response_ms") && entry["response_ms"].is_number())
    outcome["claude_response_time_ms"] = entry["response_ms"];
  outcome["reward"] = entry.value("reward", 0.5);
  const auto r = engine.record(json{{"interaction_id", entry.value("interaction_id", "")},
                                    {"timestamp", promptlearn::format_rfc3339(now_ms())},
                                    {"outcome_data", outcome}});
  if (!r.accepted) log.line(command, "outcome rejected: " + r.error);
}

/// Runs the due jobs in a detached grandchild (its own session, stdio on /dev/null), so the hook
/// returns at once and Claude Code does not wait for it.
void spawn_jobs(const Paths& paths, const std::string& config_path) {
  const pid_t pid = ::fork();
  if (pid != 0) {
    if (pid > 0) ::waitpid(pid, nullptr, 0);
    return;
  }
  ::setsid();
  if (::fork() != 0) ::_exit(0);
  const int null = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3; ++fd) ::dup2(null, fd);
  Log log(paths.log);
  try {
    promptlearn::LearningEngine engine(paths.db.string(), load_config(config_path), engine_options());
    const auto report = engine.run_due_jobs(now_ms());
    for (const auto& [name, error] : report.failed) log.line("jobs", name + " failed: " + error);
    engine.close();
  } catch (const std::exception& e) {
    log.line("jobs", e.what());
  }
  ::_exit(0);
}

struct Options {
  std::string command, db, config;
  std::int64_t jobs_every_s = 3600;
  bool jobs_foreground = false;
};

/// UserPromptSubmit. Returns the text to print.
std::string user_prompt_submit(const Options& opt, const Paths& paths, const json& in, const Log& log,
                               bool& run_jobs) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string prompt = in.at("prompt").get<std::string>();
  const std::string session_id = in.value("session_id", "");
  const std::string cwd = in.contains("cwd") && in["cwd"].is_string() ? in["cwd"].get<std::string>() : "";
  const std::int64_t now = now_ms();

  promptlearn::LearningEngine engine(paths.db.string(), load_config(opt.config), engine_options());
  const auto bodies = ensure_templates(engine, paths.db.string());
  StateFile state(paths.state);

  // The previous interaction of this session: its outcome revised by what the user says now.
  if (!session_id.empty())
    if (json* prev = state.session(session_id); prev != nullptr && prev->contains("interaction_id")) {
      const auto prev_tokens = prev->value("tokens", std::vector<std::uint32_t>{});
      const FollowUp f = classify_follow_up(prompt, prev_tokens);
      // No Stop before the next prompt: Claude Code does not run Stop when the user interrupts.
      const bool stopped = prev->value("stopped", false);
      const double before = stopped ? prev->value("reward", 0.5) : 0.25;
      const double after = revise_reward(before, f);
      if (!stopped || after != before) {
        (*prev)["reward"] = after;
        (*prev)["follow_up"] = follow_up_name(f);
        record_outcome(engine, *prev, opt.command, log);
      }
    }

  json doc = {{"interaction_id", uuid_v4()},
              {"timestamp", promptlearn::format_rfc3339(now)},
              {"user_id", os_user()},
              {"input_data", {{"raw_prompt", prompt}}}};
  if (!session_id.empty()) doc["session_id"] = session_id;
  json context = json::object();
  if (!cwd.empty()) {
    context["working_directory"] = cwd;
    if (auto branch = git_branch(cwd); !branch.empty()) context["git_branch"] = branch;
  }
  context["ide_detected"] = "claude-code";
  doc["context_data"] = context;

  const auto t_sel = std::chrono::steady_clock::now();
  const promptlearn::Decision d = engine.select_template(doc);
  const double select_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_sel).count();
  const std::string key = d.chosen.template_id + "@" + d.chosen.version;
  std::string text;
  if (auto it = bodies.find(key); it != bodies.end()) text = it->second;
  for (std::size_t at; (at = text.find("{prompt}")) != std::string::npos;) text.replace(at, 8, prompt);

  doc["enhancement_data"] = {{"selected_template", d.chosen.template_id},
                             {"template_version", d.chosen.version},
                             {"enhancement_applied", !text.empty()},
                             {"enhanced_prompt_length", static_cast<std::int64_t>(prompt.size() + text.size())}};
  const double total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  doc["enhancement_data"]["enhancement_time_ms"] = total_ms;
  doc["performance_metrics"] = {{"total_processing_time_ms", total_ms}, {"template_selection_time_ms", select_ms}};
  const auto r = engine.record(doc);
  if (!r.accepted) throw std::runtime_error("interaction rejected: " + r.error);
  engine.close();

  if (!session_id.empty()) {
    json& entry = state.put_session(session_id);
    entry = {{"interaction_id", doc["interaction_id"]},
             {"started_ms", now},
             {"tokens", token_hashes(prompt)},
             {"template", key},
             {"stopped", false}};
  }
  json& doc_state = state.doc();
  if (!doc_state.contains("last_jobs_ms")) {
    doc_state["last_jobs_ms"] = now;  // a new file: nothing to learn from yet
  } else if (opt.jobs_every_s > 0 &&
             now - doc_state.value("last_jobs_ms", std::int64_t{0}) >= opt.jobs_every_s * 1000) {
    doc_state["last_jobs_ms"] = now;  // claimed under the state lock: one process runs them
    run_jobs = true;
  }
  state.save(now);
  return text;
}

/// Stop: the outcome of the session's latest interaction.
void stop(const Options& opt, const Paths& paths, const json& in, const Log& log) {
  const std::string session_id = in.at("session_id").get<std::string>();
  const std::int64_t now = now_ms();
  StateFile state(paths.state);
  json* entry = state.session(session_id);
  if (entry == nullptr) return;  // a session that began before the hook was installed
  const std::string transcript =
      in.contains("transcript_path") && in["transcript_path"].is_string() ? in["transcript_path"].get<std::string>() : "";
  const TurnSummary turn = transcript.empty() ? TurnSummary{} : summarise_transcript(transcript);
  (*entry)["response_ms"] = static_cast<double>(std::max<std::int64_t>(0, now - entry->value("started_ms", now)));
  (*entry)["reward"] = stop_reward(turn);
  (*entry)["stopped"] = true;
  (*entry)["tool_calls"] = turn.tool_calls;
  (*entry)["tool_errors"] = turn.tool_errors;
  promptlearn::LearningEngine engine(paths.db.string(), load_config(opt.config), engine_options());
  record_outcome(engine, *entry, opt.command, log);
  engine.close();
  state.save(now);
}

Paths resolve_paths(const std::string& db_option) {
  Paths p;
  if (!db_option.empty()) {
    p.db = db_option;
  } else {
    const char* home = std::getenv("HOME");
    const fs::path base = home != nullptr && *home != '\0' ? fs::path(home) : fs::current_path();
    p.db = base / ".promptlearn" / "learn.db";
    std::error_code ec;
    fs::create_directories(p.db.parent_path(), ec);
    ::chmod(p.db.parent_path().c_str(), 0700);
  }
  p.dir = p.db.has_parent_path() ? p.db.parent_path() : fs::path(".");
  p.log = p.dir / "hook.log";
  p.state = p.dir / "hook-state.json";
  return p;
}

int usage() {
  std::cerr << "usage: promptlearn-hook user-prompt-submit|stop [--db FILE] [--config FILE]\n"
               "                        [--jobs-every SECONDS] [--jobs-foreground]\n"
               "Claude Code hook: reads the hook's JSON on stdin (examples/claude-code-hook/README.md).\n";
  return 0;  // even a wrong command line must not block the user's prompt
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--db" || a == "--config" || a == "--jobs-every") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--db") opt.db = v;
      else if (a == "--config") opt.config = v;
      else opt.jobs_every_s = std::strtoll(v.c_str(), nullptr, 10);
    } else if (a == "--jobs-foreground") {
      opt.jobs_foreground = true;
    } else if (opt.command.empty() && (a == "user-prompt-submit" || a == "stop")) {
      opt.command = a;
    } else {
      return usage();
    }
  }
  if (opt.command.empty()) return usage();

  Paths paths;
  try {
    paths = resolve_paths(opt.db);
  } catch (const std::exception&) {
    return 0;
  }
  Log log(paths.log);
  ::signal(SIGALRM, on_watchdog);
  ::alarm(kWatchdogSeconds);

  bool run_jobs = false;
  std::string out;
  try {
    const std::string text = read_all(std::cin);
    json in = json::parse(text, nullptr, false);
    if (!in.is_object()) throw std::runtime_error("stdin is not a JSON object (" + std::to_string(text.size()) + " bytes)");
    if (opt.command == "user-prompt-submit") out = user_prompt_submit(opt, paths, in, log, run_jobs);
    else stop(opt, paths, in, log);
  } catch (const std::exception& e) {
    log.line(opt.command, e.what());
    return 0;
  }
  if (!out.empty()) {
    std::cout << out << std::endl;
    std::cout.flush();
  }
  if (run_jobs || opt.jobs_foreground) {
    if (opt.jobs_foreground) {
      try {
        promptlearn::LearningEngine engine(paths.db.string(), load_config(opt.config), engine_options());
        const auto report = engine.run_due_jobs(now_ms());
        for (const auto& [name, error] : report.failed) log.line("jobs", name + " failed: " + error);
        engine.close();
      } catch (const std::exception& e) {
        log.line("jobs", e.what());
      }
    } else {
      ::alarm(0);
      spawn_jobs(paths, opt.config);
    }
  }
  return 0;
}

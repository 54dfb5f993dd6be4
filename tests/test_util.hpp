#pragma once
// Helpers shared by the tests: temporary folders, fixture files, wire documents.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "promptlearn/config.hpp"

namespace promptlearn::test {

/// The default configuration with commits that do not fsync (tests: durability is not the subject here;
/// tests/durability_test.cpp is about it).
inline Config fast_config() {
  Config c = Config::defaults();
  c.learning.data_collection.synchronous_commit = SynchronousCommit::normal;
  return c;
}

/// A fresh temporary folder, removed with its contents when the object goes.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("promptlearn_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Exit status and standard output of a shell command line.
struct Run {
  int status;
  std::string out;
};

/// Runs a shell command line, capturing stdout (stderr too when `with_stderr`, else it is discarded).
inline Run sh(const std::string& cmd, bool with_stderr = false) {
  const std::string full = cmd + (with_stderr ? " 2>&1" : " 2>/dev/null");
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A fixture from tests/data.
inline nlohmann::json fixture(const std::string& name) {
  return nlohmann::json::parse(read_file(std::string(PROMPTLEARN_TEST_DATA) + "/" + name));
}

/// A deterministic UUID v4 for index i.
inline std::string uuid_for(std::uint64_t i, std::uint64_t salt = 0) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%04llx-4%03llx-8%03llx-%012llx",
                static_cast<unsigned long long>(salt & 0xFFFFFFFFull),
                static_cast<unsigned long long>((i >> 48) & 0xFFFF), static_cast<unsigned long long>((i >> 36) & 0xFFF),
                static_cast<unsigned long long>((i >> 24) & 0xFFF), static_cast<unsigned long long>(i & 0xFFFFFFFFFFFFull));
  return buf;
}

/// A minimal valid interaction document.
inline nlohmann::json interaction_doc(const std::string& id, const std::string& prompt = "Fix the failing unit test") {
  return {{"interaction_id", id}, {"timestamp", "2026-02-01T12:00:00Z"}, {"input_data", {{"raw_prompt", prompt}}}};
}

}  // namespace promptlearn::test

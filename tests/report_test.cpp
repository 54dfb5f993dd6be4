// `promptlearn report`: one self-contained HTML file, escaped user text, every chart, rendered by a real
// browser (headless Chromium; skipped with a warning where it is not installed).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <string>

#include "promptlearn/store/database.hpp"
#include "promptlearn/store/store.hpp"
#include "test_util.hpp"

using nlohmann::json;
using namespace promptlearn;

namespace {

using test::Run;
using test::sh;

std::string bin() { return std::string(PROMPTLEARN_BIN_DIR) + "/promptlearn"; }

const char* kChromium = "/usr/bin/chromium";
constexpr const char* kEvil = "<script>alert('x')</script>&\"";

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

/// Text inside an SQL string literal ('' for ').
std::string sql_quoted(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out;
}

/// The demo's 10 days (2026-01-05 .. 2026-01-15), plus decisions and an audit row carrying markup.
std::string demo_db(const test::TempDir& dir) {
  const std::string db = dir.file("demo.db");
  Run r = sh(bin() + " demo --db " + db + " --days 10 --per-day 120 --quiet");
  REQUIRE(r.status == 0);
  store::Database conn(db);
  for (int i = 0; i < 40; ++i)
    conn.exec(fmt::format(
        "INSERT INTO decisions (interaction_id, timestamp, policy_name, policy_version, action_set, chosen_template, "
        "chosen_version, propensity, context, reward) VALUES ('evil-{}', '2026-01-14T1{}:00:00.000Z', 'linucb', 1, '[]', "
        "'{}', '1', 0.5, '[]', 0.5)",
        i, i % 10, sql_quoted(kEvil)));
  conn.exec("INSERT INTO audit_log (timestamp, actor, action, details) VALUES ('2026-01-13T08:00:00.000Z', 'engine', "
            "'rollback', '{\"model\":\"<b>m</b>\",\"from\":3,\"to\":2,\"reason\":\"<img src=x>\"}')");
  return db;
}

/// Checks that make a report one self-contained document.
void check_self_contained(const std::string& html) {
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<link") == std::string::npos);
  CHECK(html.find("<img") == std::string::npos);
  CHECK(html.find("url(") == std::string::npos);
  CHECK(html.find("@import") == std::string::npos);
  CHECK(count_of(html, "<svg") == 4);
  CHECK(count_of(html, "</svg>") == 4);
  for (const char* section : {"1. Reward by policy version", "2. Template share", "3. Latency percentiles",
                              "4. When people use it", "5. Correlations", "6. Insights"})
    CHECK(html.find(section) != std::string::npos);
  CHECK(html.find("</html>") != std::string::npos);
}

/// Width and height from a PNG's IHDR chunk; {0, 0} when the bytes are not a PNG.
std::pair<std::uint32_t, std::uint32_t> png_size(const std::string& png) {
  static const std::string kSignature = "\x89PNG\r\n\x1a\n";
  if (png.size() < 24 || png.compare(0, 8, kSignature) != 0 || png.compare(12, 4, "IHDR") != 0) return {0, 0};
  auto be32 = [&](std::size_t at) {
    return (std::uint32_t(std::uint8_t(png[at])) << 24) | (std::uint32_t(std::uint8_t(png[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(png[at + 2])) << 8) | std::uint32_t(std::uint8_t(png[at + 3]));
  };
  return {be32(16), be32(20)};
}

/// Renders `html_path` with headless Chromium into `png_path` (1400 x 3000); the exit status.
int screenshot(const test::TempDir& dir, const std::string& html_path, const std::string& png_path) {
  const std::string profile = dir.file("chromium-profile-" + std::filesystem::path(png_path).stem().string());
  std::filesystem::create_directories(profile);
  return sh(fmt::format("timeout 60 {} --headless --no-sandbox --disable-gpu --disable-background-networking "
                        "--user-data-dir={} --screenshot={} --window-size=1400,3000 file://{}",
                        kChromium, profile, png_path, html_path))
      .status;
}

}  // namespace

TEST_CASE("report: --help, usage and data errors", "[report][cli]") {
  test::TempDir dir;
  Run h = sh(bin() + " report --help");
  CHECK(h.status == 0);
  CHECK(h.out.find("usage: promptlearn report") != std::string::npos);
  CHECK(sh(bin() + " report --db " + dir.file("x.db")).status == 2);                       // no -o
  CHECK(sh(bin() + " report -o " + dir.file("r.html")).status == 2);                        // no --db
  CHECK(sh(bin() + " report --db x.db -o r.html --days 0").status == 2);                    // bad --days
  CHECK(sh(bin() + " report --db x.db -o r.html --now yesterday").status == 2);             // bad --now
  Run missing = sh(bin() + " report --db " + dir.file("missing.db") + " -o " + dir.file("r.html"), true);
  CHECK(missing.status == 1);
  CHECK(std::count(missing.out.begin(), missing.out.end(), '\n') == 1);                     // one line
  CHECK_FALSE(std::filesystem::exists(dir.file("missing.db")));                             // read-only: not created
  { std::ofstream(dir.file("junk.db")) << "not a database at all, just some text that is long enough......"; }
  CHECK(sh(bin() + " report --db " + dir.file("junk.db") + " -o " + dir.file("r.html")).status == 1);
  CHECK_FALSE(std::filesystem::exists(dir.file("r.html")));
}

TEST_CASE("report: an empty database gives every chart a no-data message", "[report][cli]") {
  test::TempDir dir;
  const std::string db = dir.file("empty.db"), out = dir.file("empty.html");
  { store::Store create(db); }
  Run r = sh(bin() + " report --db " + db + " -o " + out + " --now 2026-01-15T00:00:00Z");
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j["report"] == out);
  CHECK(j["charts"] == 4);
  CHECK(j["charts_with_data"] == 0);
  CHECK(j["interactions"] == 0);
  const std::string html = test::read_file(out);
  CHECK(j["bytes"] == html.size());
  check_self_contained(html);
  CHECK(count_of(html, "aria-label=\"no data\"") == 4);  // every chart (the tables say so too)
  CHECK(html.find("The file holds no interaction yet") != std::string::npos);
}

TEST_CASE("report: a demo database, 30 days and 1 day, escaped, rendered by Chromium", "[report][cli][browser]") {
  test::TempDir dir;
  const std::string db = demo_db(dir);
  const std::string out = dir.file("report.html"), day = dir.file("day.html");

  Run r = sh(bin() + " report --db " + db + " -o " + out + " --days 30 --now 2026-01-15T00:00:00Z");
  REQUIRE(r.status == 0);
  const json j = json::parse(r.out);
  CHECK(j["charts_with_data"] == 4);
  CHECK(j["granularity"] == "day");
  CHECK(j["interactions"].get<int>() >= 1000);
  const std::string html = test::read_file(out);
  CHECK(j["bytes"] == html.size());
  check_self_contained(html);
  CHECK(html.find("No data:") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;") != std::string::npos);
  CHECK(html.find("&lt;img src=x&gt;") != std::string::npos);     // the rollback's details, in its tooltip
  CHECK(html.find("class=\"rollback\"") != std::string::npos);
  CHECK(html.find("plain") != std::string::npos);                   // a demo template in the legend
  CHECK(html.find("<td>pearson</td>") != std::string::npos);        // the correlation table

  Run one = sh(bin() + " report --db " + db + " -o " + day + " --days 1 --now 2026-01-14T12:00:00Z");
  REQUIRE(one.status == 0);
  CHECK(json::parse(one.out)["granularity"] == "hour");
  check_self_contained(test::read_file(day));

  // An explicit window without data says where the data is.
  Run later = sh(bin() + " report --db " + db + " -o " + dir.file("later.html") + " --days 7 --now 2026-06-01T00:00:00Z");
  REQUIRE(later.status == 0);
  CHECK(test::read_file(dir.file("later.html")).find("The file's interactions span 2026-01-05") != std::string::npos);

  if (!std::filesystem::exists(kChromium)) {
    WARN("SKIPPED the browser rendering: " << kChromium << " is not installed (Debian package chromium)");
    return;
  }
  const std::string blank_html = dir.file("blank.html"), blank_png = dir.file("blank.png"), png = dir.file("report.png");
  { std::ofstream(blank_html) << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body></body></html>\n"; }
  REQUIRE(screenshot(dir, blank_html, blank_png) == 0);
  REQUIRE(screenshot(dir, out, png) == 0);
  const std::string blank_bytes = test::read_file(blank_png), bytes = test::read_file(png);
  CHECK(png_size(blank_bytes) == std::make_pair(std::uint32_t{1400}, std::uint32_t{3000}));
  CHECK(png_size(bytes) == std::make_pair(std::uint32_t{1400}, std::uint32_t{3000}));
  INFO("report PNG " << bytes.size() << " bytes, blank page PNG " << blank_bytes.size() << " bytes");
  CHECK(bytes.size() > 5 * blank_bytes.size());
  CHECK(bytes.size() > blank_bytes.size() + 50000);
  if (const char* keep = std::getenv("PROMPTLEARN_REPORT_PNG")) std::filesystem::copy_file(png, keep, std::filesystem::copy_options::overwrite_existing);
}

#pragma once
// Helpers shared by the tests: temporary folders, fixture files, wire documents.
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include <unistd.h>

namespace promptlearn::test {

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

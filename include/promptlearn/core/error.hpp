#pragma once
/// @file Exception hierarchy: every error names where, what was given, and what was expected.
#include <stdexcept>
#include <string>
#include <utility>

namespace promptlearn {

/// Base of every exception promptlearn throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A configuration key is unknown or its value is out of range; the message starts with the key path.
class ConfigError : public Error {
 public:
  ConfigError(std::string key, const std::string& message)
      : Error(key + ": " + message), key_(std::move(key)) {}
  /// Dotted key path, e.g. `learning.learning_parameters.learning_rate`.
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

/// An event or record failed validation; the message starts with the JSON path of the field.
/// Example: `outcome_data.quality_metrics.accuracy: 1.7 is outside [0, 1]`.
class ValidationError : public Error {
 public:
  ValidationError(std::string path, const std::string& message)
      : Error(path.empty() ? message : path + ": " + message), path_(std::move(path)) {}
  /// JSON path of the offending field ("" for the document itself).
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

/// SQLite reported an error; carries SQLite's (extended) result code and the statement.
class StorageError : public Error {
 public:
  StorageError(int code, const std::string& message) : Error(message), code_(code) {}
  /// SQLite extended result code (SQLITE_BUSY = 5, SQLITE_CORRUPT = 11, ...), or -1 if not from SQLite.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

}  // namespace promptlearn

#pragma once
// The state of LearningEngine's optional background job thread (private to src/engine).
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "promptlearn/engine.hpp"

namespace promptlearn {

struct LearningEngine::Background {
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable wake;
  bool stop = false;
  std::string last_error;
};

}  // namespace promptlearn

// Links the installed promptlearn and records one event into a temporary file.
#include <cstdio>
#include <iostream>
#include <promptlearn/promptlearn.hpp>

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "downstream.db";
  promptlearn::LearningEngine engine(path, promptlearn::Config::defaults());
  auto r = engine.record(R"({"interaction_id": "3b241101-e2bb-4255-8caf-4136c566a962",
                             "input_data": {"raw_prompt": "Explain the retry logic in the HTTP client"}})");
  engine.close();
  std::cout << "downstream: accepted=" << r.accepted
            << " interactions=" << engine.stats().tables.interactions << "\n";
  return r.accepted || r.error.find("already recorded") != std::string::npos ? 0 : 1;
}

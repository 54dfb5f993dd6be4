#pragma once
/// @file Umbrella header for users of promptlearn (the library itself never includes it).
#include "promptlearn/collect/collector.hpp"
#include "promptlearn/config.hpp"
#include "promptlearn/core/clock.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/core/records.hpp"
#include "promptlearn/core/rng.hpp"
#include "promptlearn/core/time.hpp"
#include "promptlearn/engine.hpp"
#include "promptlearn/features/extractor.hpp"

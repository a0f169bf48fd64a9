#pragma once

#include <string>
#include <vector>

namespace ocm {

// The candidate closest to `word` by edit distance, or "" when none is close enough to be a
// plausible typo (distance at most a third of the word's length, and at least 2 allowed).
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// "a, b or c"
std::string join_alternatives(const std::vector<std::string>& words);

}  // namespace ocm

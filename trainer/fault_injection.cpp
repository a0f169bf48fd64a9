#include "trainer/fault_injection.h"

#include <cstdlib>
#include <sstream>

#include "common/error.h"

namespace ocm::trainer {

Fault fault_from_environment() {
  const char* text = std::getenv("OCM_FAULT");
  if (text == nullptr || *text == '\0')
    return {};
  Fault fault;
  std::stringstream in(text);
  std::string rank, step;
  if (!std::getline(in, fault.kind, ':') || !std::getline(in, rank, ':') ||
      !std::getline(in, step) ||
      (fault.kind != "throw" && fault.kind != "stall" && fault.kind != "nan")) {
    throw UserError("OCM_FAULT", std::string("is `") + text + "`",
                    "KIND:RANK:STEP with KIND throw, stall or nan (a testing aid; unset it)");
  }
  try {
    fault.rank = std::stoi(rank);
    fault.step = std::stoll(step);
  } catch (const std::exception&) {
    throw UserError("OCM_FAULT", std::string("is `") + text + "`", "integer RANK and STEP");
  }
  return fault;
}

}  // namespace ocm::trainer

#pragma once

#include "dist/topology.h"

namespace ocm::test {

// The topology of the MPI job the test binary runs in; see mpi_test_main.cpp.
const dist::Topology& topology();

}  // namespace ocm::test

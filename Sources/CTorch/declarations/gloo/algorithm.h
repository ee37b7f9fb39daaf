// ProcessGroupGloo.hpp includes gloo/algorithm.h; nothing from it is needed (see distributed.cpp).
#pragma once

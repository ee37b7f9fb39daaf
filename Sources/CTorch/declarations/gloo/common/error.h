// ProcessGroupGloo.hpp includes gloo/common/error.h; nothing from it is needed (see distributed.cpp).
#pragma once

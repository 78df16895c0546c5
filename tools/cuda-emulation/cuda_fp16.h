// Emulation stand-in for the CUDA header of this name: everything is in cuda_emu.h.
#pragma once
#include "cuda_emu.h"

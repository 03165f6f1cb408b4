// neon_dotprod::linear_q, for the NEON tables on CPUs with the dot-product extension (dispatch.cpp): the driver
// of linear_q/common.h with SDOT by element (linear_q/neon_dotprod.h). Compiled with +dotprod.
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "linear_q/neon_dotprod.h"

namespace lfm25::cpu::neon_dotprod {

Status linear_q(const LinearQParams& p) { return linear_q_with<NeonSdot, 4>(p); }

}  // namespace lfm25::cpu::neon_dotprod

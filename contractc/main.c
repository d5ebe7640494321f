/* SPDX-License-Identifier: Apache-2.0 */
/* contractc: see docs/contractc.md. The logic lives in libcontractc. */
#include <stdio.h>

#include "cc.h"

int main(int argc, char **argv)
{
	return contractc_main(argc, argv, stdout, stderr);
}

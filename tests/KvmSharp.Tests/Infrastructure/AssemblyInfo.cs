// SPDX-License-Identifier: MIT

// Tests check that no file descriptor leaks (see KernelTest); that needs one test at a time in this process.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

// SPDX-License-Identifier: MIT

// CliRun counts this process's KVM descriptors before and after each run; that needs one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

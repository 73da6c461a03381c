// SPDX-License-Identifier: MIT

// Each test starts programs that run a .NET runtime of their own (the bridge) and count this process's descriptors:
// one at a time on two cores.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

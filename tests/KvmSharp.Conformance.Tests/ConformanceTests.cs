// SPDX-License-Identifier: MIT
// Cases check for leaked descriptors by diffing /proc/self/fd: one case at a time in this process.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace KvmSharp.Conformance.Tests;

/// <summary>Every conformance case on every kernel, as one test each; a case the kernel cannot run is skipped with its reason.</summary>
public class ConformanceTests
{
    public static TheoryData<string, string> CasesOnKernels
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var @case in ConformanceSuite.Cases)
            {
                foreach (var target in KernelTarget.All) data.Add(@case.Name, target.Name);
            }
            return data;
        }
    }

    [SkippableTheory]
    [MemberData(nameof(CasesOnKernels))]
    public void Case(string name, string kernel)
    {
        var result = ConformanceRunner.Run(ConformanceSuite.Find(name), KernelTarget.Parse(kernel));
        Skip.If(result.Outcome == CaseOutcome.Skipped, result.Reason);
        Assert.True(result.Outcome == CaseOutcome.Passed, result.Reason);
    }

    [Fact]
    public void Every_upstream_selftest_function_is_present()
    {
        string[] upstream =
        [
            "test_file_read_write", "test_mmap_cow", "test_mmap_supported", "test_mbind", "test_numa_allocation",
            "test_collapse", "test_fault_overflow", "test_fault_private", "test_mmap_not_supported", "test_file_size",
            "test_fallocate", "test_invalid_punch_hole", "test_create_guest_memfd_invalid_sizes",
            "test_create_guest_memfd_multiple", "test_guest_memfd_flags", "test_guest_memfd_guest",
        ];
        var names = ConformanceSuite.Cases.Select(c => c.Name).ToHashSet();
        foreach (string name in upstream) Assert.Contains(name, names);
    }

    [Fact]
    public void Every_v8_conversions_test_case_is_present()
    {
        // x86/guest_memfd_conversions_test.c, "[PATCH v8] guest_memfd: In-place conversion support".
        string[] v8 =
        [
            "init_private", "init_shared", "indexing", "before_allocation_shared", "before_allocation_private",
            "unallocated_folios", "truncate", "forked_accesses", "elevated_refcount",
        ];
        var names = ConformanceSuite.Cases.Select(c => c.Name).ToHashSet();
        foreach (string name in v8) Assert.Contains(name, names);
    }
}

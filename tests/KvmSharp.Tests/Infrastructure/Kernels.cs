// SPDX-License-Identifier: MIT
using KvmSharp.Conformance;
using KvmSharp.Kernel;

namespace KvmSharp.Tests.Infrastructure;

/// <summary>
/// The kernels an SDK test body runs on (the conformance suite's targets): the same body checks the real kernel
/// and keeps the emulator honest.
/// </summary>
public static class Kernels
{
    /// <summary>Theory data: one row per kernel.</summary>
    public static TheoryData<string> All
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var target in KernelTarget.All) data.Add(target.Name);
            return data;
        }
    }

    public static IKernel Create(string name) => KernelTarget.Parse(name).CreateKernel(EmulatedProfile.LikeThisHost);
}

// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;

namespace KvmSharp.Vmm.Benchmarks;

/// <summary>
/// The C reference's VM with <see cref="BenchGuest"/>'s code, for the per-call benchmarks and probes: opened and
/// created together, destroyed and closed together (the library keeps one VM per process).
/// </summary>
internal sealed class CReferenceVm : IDisposable
{
    private CReferenceVm()
    {
    }

    public static CReferenceVm Create()
    {
        CReferenceVmm.Check(CReferenceVmm.Open(), "open");
        CReferenceVmm.Check(CReferenceVmm.VmCreate(BenchGuest.Code, Trampoline.Bytes, BenchGuest.MemorySize), "vm create");
        return new CReferenceVm();
    }

    public void Dispose()
    {
        CReferenceVmm.VmDestroy();
        CReferenceVmm.Close();
    }
}

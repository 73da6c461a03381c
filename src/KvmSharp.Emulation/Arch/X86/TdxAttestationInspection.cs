// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Arch;
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation;

/// <summary>The measurement registers of an emulated TD's TDCS (48-byte SHA-384 values; RTMR0–3 in order).</summary>
public sealed record TdMeasurements(byte[] Mrtd, byte[] MrConfigId, byte[] MrOwner, byte[] MrOwnerConfig, IReadOnlyList<byte[]> Rtmr);

/// <summary>
/// Observation points of the emulated TDX module's attestation (Arch/X86/TdxMeasurement.cs, TdxReport.cs) that no KVM
/// ioctl exposes: a TD's private memory as the TD sees it (on hardware only the TD and the module read it), the TDCS
/// measurement registers (the module's TDH.MNG.RD of MRTD/RTMR, which KVM does not offer), and the check of a
/// TDREPORT_STRUCT's MAC (the emulator's stand-in for the CPU-bound MAC, which on hardware only TDG.MR.VERIFYREPORT
/// or the quoting enclave verifies). Test and tooling hooks.
/// </summary>
public static class TdxAttestationInspection
{
    /// <summary>
    /// Reads <paramref name="data"/>.Length bytes (within one page) of the TD <paramref name="vmFd"/>'s private
    /// memory at <paramref name="gpa"/> (shared bit clear): 0; EBADF; EINVAL (not a TD, the shared bit set, the range
    /// crosses a page); EFAULT (the page is not one the TD has mapped: never added nor accepted, or no guest_memfd).
    /// </summary>
    public static long ReadPrivate(EmulatedKernel kernel, KernelFd vmFd, ulong gpa, Span<byte> data)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(vmFd);
        ulong mask = (ulong)EmulatorConfig.PageSize - 1;
        lock (kernel.SyncRoot)
        {
            long r = TdOf(kernel, vmFd, out var kvm);
            if (r != 0) return r;
            var td = CocoState.Tdx(kvm!);
            if ((gpa & td.SharedGpaBit) != 0 || (gpa & mask) + (ulong)data.Length > (ulong)EmulatorConfig.PageSize) return Err.EINVAL;
            ulong gfn = gpa >> EmulatorConfig.PageShift;
            if (TdxSept.State(kvm!, gfn) != SeptPageState.Mapped) return Err.EFAULT;
            var page = new byte[EmulatorConfig.PageSize];
            if (!TdxMeasurement.ReadGmemPage(kvm!, gfn, page)) return Err.EFAULT;
            page.AsSpan((int)(gpa & mask), data.Length).CopyTo(data);
            return 0;
        }
    }

    /// <summary>The TD's MRTD (zero before KVM_TDX_FINALIZE_VM), MRCONFIGID, MROWNER, MROWNERCONFIG and RTMRs: 0, EBADF or EINVAL (not a TD).</summary>
    public static long Measurements(EmulatedKernel kernel, KernelFd vmFd, out TdMeasurements? measurements)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        ArgumentNullException.ThrowIfNull(vmFd);
        measurements = null;
        lock (kernel.SyncRoot)
        {
            long r = TdOf(kernel, vmFd, out var kvm);
            if (r != 0) return r;
            var m = TdxMeasurement.Of(CocoState.Tdx(kvm!));
            lock (m)
                measurements = new TdMeasurements([.. m.Mrtd], [.. m.MrConfigId], [.. m.MrOwner], [.. m.MrOwnerConfig],
                    [.. m.Rtmr.Select(x => x.ToArray())]);
            return 0;
        }
    }

    /// <summary>
    /// True when <paramref name="tdReport"/> (1024 bytes) is a TDREPORT_STRUCT this emulated platform produced
    /// unchanged: TEE_TCB_INFO_HASH and TEE_INFO_HASH match TEE_TCB_INFO and TDINFO, and the MAC over REPORTMACSTRUCT is
    /// the platform key's.
    /// </summary>
    public static bool VerifyReport(EmulatedKernel kernel, ReadOnlySpan<byte> tdReport)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return TdxReport.Verify(kernel, tdReport);
    }

    private static long TdOf(EmulatedKernel kernel, KernelFd vmFd, out Kvm? kvm)
    {
        kvm = null;
        var file = kernel.Fget((uint)vmFd.Number);
        if (file is null) return Err.EBADF;
        if (file is not KvmVmFile vmFile || !CocoState.IsTd(vmFile.Kvm)) return Err.EINVAL;
        kvm = vmFile.Kvm;
        return 0;
    }
}

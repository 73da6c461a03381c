// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Fuzzing;

/// <summary>
/// The x86 CPUID and MSR calls (<see cref="X86StateOps"/>). Every buffer is as long as the largest count a kernel may
/// copy (256 entries: MAX_IO_MSRS and KVM_MAX_CPUID_ENTRIES), so both kernels see the same readable bytes. Values that
/// are the machine's (the supported-CPUID table, the MSR lists, feature MSRs, the TSC) are never shown.
/// </summary>
public sealed partial class KernelSession
{
    private const int MaxEntries = 256;

    private string ApplyX86StateOp(FuzzOp op) => op.Kind switch
    {
        OpKind.MsrsIo => MsrsIo(op),
        OpKind.CpuidRoundTrip => CpuidRoundTrip(op),
        OpKind.SystemX86List => SystemX86List(op),
        OpKind.VcpuStateRoundTrip => VcpuStateRoundTrip(op),
        OpKind.GuestDebugSet => GuestDebugSet(op),
        OpKind.GuestDebugRun => TinyGuestRun.RunGuestDebug(_kernel, Fd(op.Target), op.A),
        OpKind.X86GuestRun => TinyGuestRun.RunX86State(_kernel, Fd(op.Target), op.A, withReported: (op.E & 2) != 0),
        OpKind.Clock => Clock(op),
        OpKind.TscKhz => TscKhz(op),
        OpKind.SignalMask => SignalMaskOps.Apply(_kernel, Fd(op.Target), op, Describe),
        OpKind.DeviceAttr => DeviceAttr(op),
        OpKind.InterruptQueue => InterruptQueue(op),
        OpKind.InterruptGuestRun => TinyGuestRun.RunInterrupts(_kernel, Fd(op.Target), op.A),
        OpKind.IoEventFd => IoEventFd(op),
        OpKind.DeviceCtl => DeviceCtl(op),
        OpKind.Irqchip => Irqchip(op),
        OpKind.DirtyRingRun => TinyGuestRun.RunDirtyRing(_kernel, Fd(op.Target), op.A),
        OpKind.LevelEoiGuestRun => TinyGuestRun.RunLevelEoi(_kernel, Fd(op.Target), op.A),
        OpKind.IvtLdtGuestRun => (op.E & 1) == 0 ? TinyGuestRun.RunRealModeIvt(_kernel, Fd(op.Target), op.A, withReported: (op.E & 2) != 0)
            : TinyGuestRun.RunLdt(_kernel, Fd(op.Target), op.A, withReported: (op.E & 2) != 0),
        _ => ApplyNewUapiOp(op),
    };

    private string MsrsIo(FuzzOp op)
    {
        var fd = Fd(op.Target);
        bool withReported = (op.E & 2) != 0;
        var entries = X86StateOps.MsrEntries(op.A, (int)op.C, withReported);
        if (!withReported) SteerAroundUncheckedCpuidFaulting(fd, entries);
        var text = new StringBuilder();
        // One op in eight first sets the vCPU's machine-check banks up (KVM_X86_SETUP_MCE), drawn from the op's own
        // seed so the generator's stream is untouched: the bank MSRs' rules then follow its MCG_CAP.
        if ((op.A >> 20) % 8 == 0)
        {
            ulong cap = X86StateOps.McgCapValue(new Random(unchecked((int)(op.A >> 3) ^ 0x3CE)));
            long setup = _kernel.Ioctl(fd, KvmIoctls.KVM_X86_SETUP_MCE, MemoryMarshal.AsBytes(new Span<ulong>(ref cap)));
            text.Append(CultureInfo.InvariantCulture, $"setup_mce 0x{cap:X} ").Append(Describe(setup)).Append(", ");
        }
        if ((op.E & 1) != 0)
        {
            var buffer = MsrBuffer((uint)op.B, entries);
            long set = _kernel.Ioctl(fd, KvmIoctls.KVM_SET_MSRS, buffer);
            text.Append("set ").Append(Describe(set)).Append(", ");
            // The round trip reads what was just written: the same indices, data 0, as many as the kernel processed.
            foreach (ref var e in entries.AsSpan()) e.data = 0;
        }
        var get = MsrBuffer((uint)op.B, entries);
        long rc = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_MSRS, get);
        text.Append("get ").Append(Describe(rc));
        if (rc >= 0) AppendMsrs(text, get, Math.Min((int)Math.Min(op.B, MaxEntries), entries.Length + 1));
        return text.ToString();
    }

    /// <summary>
    /// MISC_FEATURES_ENABLES = 1 on a vCPU whose PLATFORM_INFO lacks CPUID_FAULT is refused upstream and taken by
    /// kvm_pvm (HostDeviations.KvmPvmMiscFeaturesEnablesUnchecked). The drawn PLATFORM_INFO values keep CPUID_FAULT,
    /// but a vCPU created after its VM disabled KVM_X86_QUIRK_STUFF_FEATURE_MSRS starts with PLATFORM_INFO 0 (found by
    /// seed 9127). So an entry of 1 that no PLATFORM_INFO entry of the same call precedes is written as 0 when the
    /// vCPU's PLATFORM_INFO (read first, the same on both kernels) has no CPUID_FAULT, or cannot be read.
    /// </summary>
    private void SteerAroundUncheckedCpuidFaulting(KernelFd fd, kvm_msr_entry[] entries)
    {
        bool? faultOffered = null;
        for (int i = 0; i < entries.Length; i++)
        {
            if (entries[i].index == X86StateOps.PlatformInfo) return; // sets CPUID_FAULT for the entries after it
            if (entries[i].index != X86StateOps.MiscFeaturesEnables || entries[i].data == 0) continue;
            faultOffered ??= PlatformInfoHasCpuidFault(fd);
            if (faultOffered == false) entries[i].data = 0;
        }
    }

    private bool PlatformInfoHasCpuidFault(KernelFd fd)
    {
        var get = MsrBuffer(1, [new kvm_msr_entry { index = X86StateOps.PlatformInfo }]);
        if (_kernel.Ioctl(fd, KvmIoctls.KVM_GET_MSRS, get) != 1) return false;
        var entry = MemoryMarshal.Read<kvm_msr_entry>(get.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        return (entry.data & X86StateOps.PlatformInfoCpuidFault) != 0;
    }

    private static byte[] MsrBuffer(uint nmsrs, ReadOnlySpan<kvm_msr_entry> entries)
    {
        var buffer = new byte[Marshal.SizeOf<kvm_msrs>() + MaxEntries * Marshal.SizeOf<kvm_msr_entry>()];
        var header = new kvm_msrs { nmsrs = nmsrs };
        MemoryMarshal.Write(buffer, in header);
        MemoryMarshal.AsBytes(entries).CopyTo(buffer.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        return buffer;
    }

    /// <summary>The entries written back (the TSC's data hidden: the host's clock).</summary>
    private static void AppendMsrs(StringBuilder text, byte[] buffer, int count)
    {
        var entries = MemoryMarshal.Cast<byte, kvm_msr_entry>(buffer.AsSpan(Marshal.SizeOf<kvm_msrs>()));
        for (int i = 0; i < count; i++)
        {
            var e = entries[i];
            text.Append(CultureInfo.InvariantCulture, $" {e.index:X}=");
            text.Append(e.index == X86StateOps.Tsc ? "tsc" : e.data.ToString("X", CultureInfo.InvariantCulture));
        }
    }

    private string CpuidRoundTrip(FuzzOp op)
    {
        var fd = Fd(op.Target);
        var text = new StringBuilder();
        if ((op.E & 1) == 0)
        {
            var table = X86StateOps.CpuidTable(op.A, (int)op.C);
            var set = CpuidBuffer((uint)op.B, table);
            text.Append("set ").Append(Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_SET_CPUID2, set))).Append(", ");
        }
        var get = CpuidBuffer((uint)op.D, []);
        long rc = _kernel.Ioctl(fd, KvmIoctls.KVM_GET_CPUID2, get);
        uint nent = MemoryMarshal.Read<kvm_cpuid2>(get).nent;
        text.Append("get ").Append(Describe(rc)).Append(CultureInfo.InvariantCulture, $" nent={nent}");
        if (rc == 0)
        {
            var entries = MemoryMarshal.Cast<byte, kvm_cpuid_entry2>(get.AsSpan(Marshal.SizeOf<kvm_cpuid2>()));
            for (int i = 0; i < Math.Min(nent, MaxEntries); i++) text.Append(' ').Append(FuzzText.CpuidEntry(entries[i]));
        }
        return text.ToString();
    }

    private static byte[] CpuidBuffer(uint nent, ReadOnlySpan<kvm_cpuid_entry2> entries)
    {
        var buffer = new byte[Marshal.SizeOf<kvm_cpuid2>() + MaxEntries * Marshal.SizeOf<kvm_cpuid_entry2>()];
        var header = new kvm_cpuid2 { nent = nent };
        MemoryMarshal.Write(buffer, in header);
        MemoryMarshal.AsBytes(entries).CopyTo(buffer.AsSpan(Marshal.SizeOf<kvm_cpuid2>()));
        return buffer;
    }

    /// <summary>
    /// The system lists: the tables differ by machine (and the emulator's are trimmed), so only the errno, whether the
    /// count was written back and, for feature MSR reads, how many entries were processed are compared.
    /// </summary>
    private string SystemX86List(FuzzOp op)
    {
        var fd = Fd(op.Target);
        uint n = (uint)op.B;
        switch (op.E)
        {
            case 0 or 1:
            {
                var buffer = CpuidBuffer(n, []);
                long rc = _kernel.Ioctl(fd, op.E == 0 ? KvmIoctls.KVM_GET_SUPPORTED_CPUID : KvmIoctls.KVM_GET_EMULATED_CPUID, buffer);
                return Describe(rc) + (MemoryMarshal.Read<kvm_cpuid2>(buffer).nent == n ? " nent kept" : " nent written");
            }
            case 2 or 3:
            {
                // Room for more indices than any list has; n beyond it is only what the caller claims.
                var buffer = new byte[4 + 4 * 4096];
                MemoryMarshal.Write(buffer, n);
                long rc = _kernel.Ioctl(fd, op.E == 2 ? KvmIoctls.KVM_GET_MSR_INDEX_LIST : KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST, buffer);
                return Describe(rc) + (MemoryMarshal.Read<uint>(buffer) == n ? " nmsrs kept" : " nmsrs written");
            }
            default:
            {
                var buffer = MsrBuffer(n, X86StateOps.MsrEntries(op.A, (int)op.C, withReported: false));
                return Describe(_kernel.Ioctl(fd, KvmIoctls.KVM_GET_MSRS, buffer));
            }
        }
    }
}

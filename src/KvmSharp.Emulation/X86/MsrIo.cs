// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.X86;

/// <summary>
/// arch/x86/kvm/x86.c: KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST / KVM_GET_MSRS on /dev/kvm
/// (kvm_arch_dev_ioctl) and KVM_GET_MSRS / KVM_SET_MSRS on a vCPU (kvm_arch_vcpu_ioctl → msr_io → __msr_io).
/// </summary>
internal static class MsrIo
{
    /// <summary>x86.c MAX_IO_MSRS: nmsrs at or above it is E2BIG (observed: 255 works, 256 is E2BIG).</summary>
    public const uint MaxIoMsrs = 256;

    private static readonly int HeaderSize = Marshal.SizeOf<kvm_msrs>();
    private static readonly int EntrySize = Marshal.SizeOf<kvm_msr_entry>();

    /// <summary>
    /// kvm_arch_dev_ioctl KVM_GET_MSR_INDEX_LIST (and, with the feature list, KVM_GET_MSR_FEATURE_INDEX_LIST): copy
    /// the header in, write the needed count back whatever the outcome, E2BIG when the caller's n is smaller, else
    /// copy the indices (EFAULT when the user buffer is too short for them).
    /// </summary>
    public static long IndexList(IoctlArg arg, uint[] list)
    {
        if (!arg.CopyFromUser(out kvm_msr_list header)) return Err.EFAULT;
        uint n = header.nmsrs;
        header.nmsrs = (uint)list.Length;
        if (!arg.CopyToUser(header)) return Err.EFAULT;
        if (n < (uint)list.Length) return -(long)Errno.E2BIG;
        int offset = Marshal.SizeOf<kvm_msr_list>();
        var indices = MemoryMarshal.AsBytes(list.AsSpan());
        if (arg.Buffer.Length - offset < indices.Length) return Err.EFAULT;
        indices.CopyTo(arg.Buffer[offset..]);
        return 0;
    }

    /// <summary>kvm_arch_vcpu_ioctl KVM_GET_MSRS: msr_io(vcpu, argp, do_get_msr, 1).</summary>
    public static long GetMsrs(X86Cpu cpu, IoctlArg arg) => Io(arg, writeback: true, (ref kvm_msr_entry e) =>
        MsrRules.Get(cpu, e.index, hostInitiated: true, out e.data));

    /// <summary>
    /// kvm_arch_vcpu_ioctl KVM_SET_MSRS: msr_io(vcpu, argp, do_set_msr, 0) — do_set_msr's immutable feature MSRs
    /// (MsrRules.HostWriteRefusedAfterRun) first; an IA32_TSC entry goes to
    /// <paramref name="synchronizeTsc"/> (kvm_synchronize_tsc).
    /// </summary>
    public static long SetMsrs(X86Cpu cpu, Action<ulong> synchronizeTsc, IoctlArg arg) => Io(arg, writeback: false, (ref kvm_msr_entry e) =>
        MsrRules.HostWriteRefusedAfterRun(cpu, e.index, e.data) ? 1 : MsrRules.Set(cpu, e.index, e.data, hostInitiated: true, synchronizeTsc));

    /// <summary>
    /// kvm_arch_dev_ioctl KVM_GET_MSRS: msr_io(NULL, argp, do_get_feature_msr, 1). The feature MSRs read as 0 here
    /// (kvm_get_feature_msr reports host capabilities the emulator does not have); any other advertised MSR reads
    /// as 0 through kvm_do_msr_access's fallback (observed: STAR → 1 processed, 0; an unknown index → 0 processed).
    /// </summary>
    public static long GetFeatureMsrs(EmulatorConfig config, IoctlArg arg) => Io(arg, writeback: true, (ref kvm_msr_entry e) =>
    {
        e.data = 0;
        return MsrLists.IsAdvertised(MsrLists.IndexList(config), MsrLists.FeatureList(config), e.index) ? 0 : 1;
    });

    private delegate int MsrAccess(ref kvm_msr_entry entry);

    /// <summary>
    /// msr_io: copy the header (EFAULT), nmsrs &gt;= MAX_IO_MSRS → E2BIG, memdup_user the entries (EFAULT), then
    /// __msr_io: stop at the first entry do_msr refuses and return how many were processed; KVM_GET_MSRS copies
    /// all entries back (a refused read's data is zeroed, later entries are as the caller wrote them).
    /// </summary>
    private static long Io(IoctlArg arg, bool writeback, MsrAccess access)
    {
        if (!arg.CopyFromUser(out kvm_msrs header)) return Err.EFAULT;
        if (header.nmsrs >= MaxIoMsrs) return -(long)Errno.E2BIG;
        int size = (int)header.nmsrs * EntrySize;
        if (arg.Buffer.Length - HeaderSize < size) return Err.EFAULT;
        var entries = MemoryMarshal.Cast<byte, kvm_msr_entry>(arg.Buffer.Slice(HeaderSize, size)).ToArray();
        int i = 0;
        for (; i < entries.Length; i++)
            if (access(ref entries[i]) != 0) break;
        if (writeback) MemoryMarshal.AsBytes(entries.AsSpan()).CopyTo(arg.Buffer[HeaderSize..]);
        return i;
    }
}

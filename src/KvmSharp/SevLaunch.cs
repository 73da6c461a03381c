// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp;

/// <summary>
/// The SEV and SEV-ES launch flow of a VM of type <see cref="VmType.Sev"/> or <see cref="VmType.SevEs"/>, as a VMM
/// drives it through KVM_MEMORY_ENCRYPT_OP (Documentation/virt/kvm/x86/amd-memory-encryption.rst):
/// <see cref="Init"/> (KVM_SEV_INIT2) before any vCPU, <see cref="Start"/>, <see cref="UpdateData"/> for the initial
/// image, <see cref="UpdateVmsa"/> (SEV-ES: encrypts every vCPU's register state, which is protected from then on),
/// <see cref="Measure"/>, <see cref="Finish"/>. The commands go to the firmware through /dev/sev, which this object
/// opens and owns.
/// </summary>
/// <remarks>
/// A command the kernel refuses throws <see cref="SevCommandException"/>: its <see cref="KvmException.Errno"/> is the
/// kernel's errno and, for EIO, <see cref="SevCommandException.FirmwareStatus"/> the firmware's reason (e.g.
/// <see cref="SevFirmwareStatus.InvalidGuestState"/> for a command out of order). On the emulated kernel the firmware
/// is a model and the measurement bytes are not AMD's (docs/emulator.md).
/// </remarks>
public sealed class SevLaunch : IDisposable
{
    /// <summary>The PSP driver's device node.</summary>
    public const string DefaultSevDevice = "/dev/sev";

    private SevLaunch(Vm vm, KernelFd sev)
    {
        Vm = vm;
        SevDevice = sev;
    }

    /// <summary>The VM being launched.</summary>
    public Vm Vm { get; }

    /// <summary>The /dev/sev descriptor passed as kvm_sev_cmd.sev_fd.</summary>
    public KernelFd SevDevice { get; }

    /// <summary>
    /// Opens <paramref name="sevDevice"/> on the VM's kernel for <paramref name="vm"/>'s launch. Throws
    /// <see cref="KvmException"/> (ENOENT) on a host without the PSP driver.
    /// </summary>
    public static SevLaunch Open(Vm vm, string sevDevice = DefaultSevDevice)
    {
        ArgumentNullException.ThrowIfNull(vm);
        long rc = vm.Kernel.Open(sevDevice, LinuxConstants.O_RDWR | LinuxConstants.O_CLOEXEC, out KernelFd? fd);
        KvmCall.Check(rc, "open", sevDevice);
        return new SevLaunch(vm, fd!);
    }

    /// <summary>
    /// KVM_SEV_INIT2: makes the VM an SEV (or SEV-ES, SNP) guest. Only before any vCPU exists, and once (EINVAL).
    /// </summary>
    /// <param name="vmsaFeatures">SEV features for the VMSAs (a subset of KVM_X86_SEV_VMSA_FEATURES; 0 for plain SEV).</param>
    /// <param name="ghcbVersion">GHCB protocol version; 0 picks the kernel's default (2) for SEV-ES and SNP.</param>
    public void Init(ulong vmsaFeatures = 0, ushort ghcbVersion = 0) => SevCommands.Init2(Vm, SevDevice, vmsaFeatures, ghcbVersion);

    /// <summary>
    /// KVM_SEV_LAUNCH_START: creates the guest's encryption context with <paramref name="policy"/> and returns the
    /// firmware's guest handle. The optional blobs are the guest owner's Diffie-Hellman certificate and session data.
    /// </summary>
    public uint Start(uint policy, ReadOnlySpan<byte> dhCertificate = default, ReadOnlySpan<byte> session = default)
    {
        var dh = dhCertificate.IsEmpty ? null : CocoCall.PinBytes(dhCertificate);
        var sess = session.IsEmpty ? null : CocoCall.PinBytes(session);
        var p = new kvm_sev_launch_start
        {
            policy = policy,
            dh_uaddr = dh?.Address ?? 0, dh_len = (uint)dhCertificate.Length,
            session_uaddr = sess?.Address ?? 0, session_len = (uint)session.Length,
        };
        var buffer = CocoCall.Pin(p);
        SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_LAUNCH_START, buffer, $"policy=0x{policy:X}");
        GC.KeepAlive(dh);
        GC.KeepAlive(sess);
        return CocoCall.Read<kvm_sev_launch_start>(buffer).handle;
    }

    /// <summary>
    /// KVM_SEV_LAUNCH_UPDATE_DATA: encrypts and measures <paramref name="length"/> bytes of guest memory at host address
    /// <paramref name="address"/> (memory mapped into the guest, e.g. <see cref="GuestMapping.Address"/>). The firmware
    /// wants 16-byte aligned address and length.
    /// </summary>
    public void UpdateData(nint address, uint length)
    {
        var buffer = CocoCall.Pin(new kvm_sev_launch_update_data { uaddr = (ulong)address, len = length });
        SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_DATA, buffer, $"uaddr=0x{address:X} len=0x{length:X}");
    }

    /// <summary>
    /// KVM_SEV_LAUNCH_UPDATE_VMSA (SEV-ES): copies every vCPU's registers into its VMSA and encrypts it. From then on
    /// the vCPUs' register state is protected: KVM_GET/SET_REGS, SREGS, FPU, XSAVE, XCRS and DEBUGREGS fail with
    /// EINVAL. Set the registers first.
    /// </summary>
    public void UpdateVmsa() => SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_LAUNCH_UPDATE_VMSA, null, "");

    /// <summary>
    /// KVM_SEV_LAUNCH_MEASURE: the launch measurement the guest owner verifies (asks for the blob's length first).
    /// </summary>
    public SevMeasurement Measure()
    {
        var query = CocoCall.Pin(new kvm_sev_launch_measure());
        var cmd = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_LAUNCH_MEASURE, data = query.Address, sev_fd = (uint)SevDevice.Number };
        long rc = CocoCall.Sev(Vm, ref cmd);
        GC.KeepAlive(query);
        uint needed = CocoCall.Read<kvm_sev_launch_measure>(query).len;
        // The length query answers EIO with SEV_RET_INVALID_LEN and the needed length (QEMU treats it the same way).
        if (KvmCall.IsError(rc) && !(rc == -(long)Errno.EIO && cmd.error == (uint)SevFirmwareStatus.InvalidLength && needed != 0))
            throw new SevCommandException("KVM_SEV_LAUNCH_MEASURE", (int)-rc, cmd.error, "len=0");
        var blob = new Memory.PinnedArray<byte>((int)needed, 64);
        var p = CocoCall.Pin(new kvm_sev_launch_measure { uaddr = blob.Address, len = needed });
        SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_LAUNCH_MEASURE, p, $"len={needed}");
        GC.KeepAlive(blob);
        return SevMeasurement.FromBlob(blob.Span.ToArray());
    }

    /// <summary>KVM_SEV_LAUNCH_FINISH: ends the launch (after <see cref="Measure"/>); the guest can run.</summary>
    public void Finish() => SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_LAUNCH_FINISH, null, "");

    /// <summary>KVM_SEV_GUEST_STATUS: the firmware's handle, policy and state of this guest.</summary>
    public SevGuestStatus GetStatus()
    {
        var buffer = CocoCall.Pin(new kvm_sev_guest_status());
        SevCommands.Issue(Vm, SevDevice, KvmMemoryEncrypt.KVM_SEV_GUEST_STATUS, buffer, "");
        var s = CocoCall.Read<kvm_sev_guest_status>(buffer);
        return new SevGuestStatus(s.handle, s.policy, (SevGuestState)s.state);
    }

    /// <summary>Closes /dev/sev (the VM keeps its launch state).</summary>
    public void Dispose() => SevDevice.Dispose();
}

/// <summary>The firmware's guest states (SEV API): what <see cref="SevLaunch.GetStatus"/> reports.</summary>
public enum SevGuestState : uint
{
    /// <summary>No guest context.</summary>
    Uninitialized = 0,
    /// <summary>LUPDATE: after LAUNCH_START, taking LAUNCH_UPDATE_DATA / VMSA.</summary>
    LaunchUpdate = 1,
    /// <summary>LSECRET: measured, before LAUNCH_FINISH.</summary>
    LaunchSecret = 2,
    /// <summary>RUNNING: launched.</summary>
    Running = 3,
}

/// <summary>KVM_SEV_GUEST_STATUS's answer.</summary>
/// <param name="Handle">The firmware's guest handle.</param>
/// <param name="Policy">The guest policy from LAUNCH_START.</param>
/// <param name="State">The guest's launch state.</param>
public readonly record struct SevGuestStatus(uint Handle, uint Policy, SevGuestState State);

/// <summary>
/// KVM_SEV_LAUNCH_MEASURE's blob: the 32-byte measurement followed by the 16-byte nonce (mnonce) it was computed with.
/// </summary>
/// <param name="Measurement">The launch measurement (HMAC on AMD hardware; a model's digest on the emulator).</param>
/// <param name="Nonce">The firmware's nonce.</param>
public sealed record SevMeasurement(byte[] Measurement, byte[] Nonce)
{
    /// <summary>Splits the firmware's blob (48 bytes on SEV; a longer blob keeps the first 32 as the measurement).</summary>
    public static SevMeasurement FromBlob(byte[] blob)
    {
        ArgumentNullException.ThrowIfNull(blob);
        int m = Math.Min(32, blob.Length);
        return new SevMeasurement(blob[..m], blob[m..Math.Min(blob.Length, m + 16)]);
    }
}

// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation.Arch;

/// <summary>
/// The AMD Secure Processor behind /dev/sev, as a <b>model</b>: there is no PSP here. It keeps what the uAPI can see —
/// guest handles, each guest's firmware state (UNINIT → LUPDATE → LSECRET → RUNNING, "SEV Secure Nested Paging
/// Firmware ABI" / "SEV API" guest state machine), the status code a command returns (kvm_sev_cmd.error, with -EIO
/// from the driver: drivers/crypto/ccp/sev-dev.c __sev_do_cmd_locked) — and produces deterministic launch
/// measurements. <b>The measurement bytes are not AMD's</b>: they are SHA-256 over a domain string, the policy and a
/// running digest of every measured LAUNCH_UPDATE_DATA / LAUNCH_UPDATE_VMSA, so the same launch always measures the
/// same and a different launch differently; a guest owner's tool computing AMD's HMAC will not match them. Nothing is
/// encrypted: guest memory keeps its plaintext.
/// </summary>
internal static class SevFirmware
{
    /// <summary>The PSP driver's device node.</summary>
    public const string DevSev = "/dev/sev";

    // include/uapi/linux/psp-sev.h enum sev_ret_code.
    public const uint SEV_RET_SUCCESS = 0;
    public const uint SEV_RET_INVALID_GUEST_STATE = 2;
    public const uint SEV_RET_INVALID_LEN = 4;
    public const uint SEV_RET_INVALID_ADDRESS = 9;
    public const uint SEV_RET_INVALID_GUEST = 16;

    /// <summary>drivers/crypto/ccp/sev-dev.h SEV_FW_BLOB_MAX_SIZE: the largest blob psp_copy_user_blob accepts.</summary>
    public const uint SevFwBlobMaxSize = 0x4000;

    /// <summary>LAUNCH_MEASURE's blob: a 32-byte measurement and the 16-byte mnonce (SEV API, LAUNCH_MEASURE).</summary>
    public const int MeasurementLength = 48;

    private static readonly byte[] s_domain = Encoding.ASCII.GetBytes("KvmSharp emulated SEV firmware; not AMD's measurement");

    private sealed class Psp
    {
        public uint NextHandle = 1;
    }

    private static readonly ConditionalWeakTable<EmulatedKernel, Psp> s_psps = [];

    /// <summary>/dev/sev exists: the configuration offers an SEV VM type (kvm_amd with SEV, so the PSP driver is there).</summary>
    public static bool Present(EmulatorConfig config) =>
        config.VmTypes.Any(t => t is KvmConstants.KVM_X86_SEV_VM or KvmConstants.KVM_X86_SEV_ES_VM or KvmConstants.KVM_X86_SNP_VM);

    /// <summary>
    /// __sev_issue_cmd: <c>CLASS(fd, f)(fd); if (fd_empty(f)) return -EBADF;</c> then sev_issue_cmd_external_user:
    /// <c>if (!filep || filep-&gt;f_op != &amp;sev_fops) return -EBADF;</c>.
    /// </summary>
    public static long CheckFd(EmulatedKernel kernel, int fd) =>
        fd >= 0 && kernel.Fget((uint)fd) is Fs.SevDeviceFile ? 0 : Err.EBADF;

    /// <summary>
    /// Runs one firmware command through <paramref name="fd"/>: -EBADF before the firmware when the descriptor is not
    /// /dev/sev (error untouched), else the command's status goes to <paramref name="error"/> and a non-zero status
    /// is -EIO (__sev_do_cmd_locked: "*psp_ret = status; if (status) ret = -EIO").
    /// </summary>
    public static long Issue(EmulatedKernel kernel, int fd, ref uint error, Func<uint> command)
    {
        long r = CheckFd(kernel, fd);
        if (r != 0) return r;
        error = command();
        return error == SEV_RET_SUCCESS ? 0 : Err.EIO;
    }

    // include/uapi/linux/psp-sev.h: struct sev_user_data_status { u8 api_major, api_minor, state; u32 flags; u8 build;
    // u32 guest_count; } __packed (12 bytes); SEV_STATUS_FLAGS_CONFIG_ES; enum sev_state SEV_STATE_INIT.
    private const int StatusSize = 12;
    private const uint SEV_STATUS_FLAGS_CONFIG_ES = 0x0100;
    private const byte SEV_STATE_INIT = 1;

    /// <summary>
    /// The firmware's API version and build, a model value: 1.55 build 21, the SEV-SNP ABI release the rest of the
    /// model follows (SNP_LAUNCH_UPDATE page types, the TCB's SNP SVN 0x15 in <see cref="SnpPsp.ChipTcb"/>).
    /// </summary>
    public const byte ApiMajor = 1, ApiMinor = 55, Build = 21;

    /// <summary>
    /// SEV_ISSUE_CMD SEV_PLATFORM_STATUS (sev-dev.c sev_ioctl_do_platform_status): the firmware's PLATFORM_STATUS into
    /// a zeroed struct sev_user_data_status, copied to <paramref name="data"/> (EFAULT). The platform is in INIT
    /// (sev-dev.c initialises it when the PSP is probed) and SEV-ES capable where the configuration offers SEV-ES or
    /// SNP VMs; the guest count stays 0 — the emulator's choice, no host with /dev/sev was probed.
    /// </summary>
    public static long PlatformStatus(EmulatedKernel kernel, ulong data, ref uint error)
    {
        Span<byte> status = stackalloc byte[StatusSize];
        status.Clear();
        status[0] = ApiMajor;
        status[1] = ApiMinor;
        status[2] = SEV_STATE_INIT;
        bool es = kernel.Config.VmTypes.Any(t => t is KvmConstants.KVM_X86_SEV_ES_VM or KvmConstants.KVM_X86_SNP_VM);
        BinaryPrimitives.WriteUInt32LittleEndian(status[3..], es ? SEV_STATUS_FLAGS_CONFIG_ES : 0);
        status[7] = Build;
        error = SEV_RET_SUCCESS;
        return Vfs.UserMemory.CopyToUser(kernel.Config, data, status) ? 0 : Err.EFAULT;
    }

    /// <summary>LAUNCH_START / SNP_LAUNCH_START: a new guest context in LUPDATE, its handle (1, 2, … per kernel).</summary>
    public static uint NewGuest(EmulatedKernel kernel, SevInfo sev, ulong policy)
    {
        var psp = s_psps.GetValue(kernel, _ => new Psp());
        uint handle;
        lock (psp) handle = psp.NextHandle++;
        sev.FirmwareState = SevGuestState.LaunchUpdate;
        sev.LaunchDigest?.Dispose();
        sev.LaunchDigest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> p = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(p, policy);
        sev.LaunchDigest.AppendData(s_domain);
        sev.LaunchDigest.AppendData(p);
        return handle;
    }

    /// <summary>Extends the launch digest with measured bytes (a tag says which command measured them).</summary>
    public static void Measure(SevInfo sev, string tag, ReadOnlySpan<byte> bytes)
    {
        if (sev.LaunchDigest is not { } d) return;
        d.AppendData(Encoding.ASCII.GetBytes(tag));
        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)bytes.Length);
        d.AppendData(len);
        d.AppendData(bytes);
    }

    /// <summary>
    /// The LAUNCH_MEASURE blob: SHA-256(domain ‖ launch digest ‖ mnonce) and the mnonce, which is derived from the
    /// handle instead of being random so the bytes are reproducible.
    /// </summary>
    public static byte[] MeasurementBlob(SevInfo sev)
    {
        byte[] digest = sev.LaunchDigest?.GetCurrentHash() ?? new byte[32];
        Span<byte> handle = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(handle, sev.Handle);
        byte[] mnonce = SHA256.HashData([.. Encoding.ASCII.GetBytes("mnonce"), .. handle])[..16];
        byte[] measure = SHA256.HashData([.. s_domain, .. digest, .. mnonce]);
        return [.. measure, .. mnonce];
    }
}

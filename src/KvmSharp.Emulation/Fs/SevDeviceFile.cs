// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Fs;

/// <summary>
/// /dev/sev (drivers/crypto/ccp/sev-dev.c sev_fops): the descriptor a VMM passes as kvm_sev_cmd.sev_fd, which
/// sev_issue_cmd_external_user accepts only when <c>filep-&gt;f_op == &amp;sev_fops</c> (else -EBADF). It exists in the
/// emulated file system when the configuration offers an SEV VM type with the vendor hooks (kvm_amd + the PSP
/// driver). Its own ioctl, SEV_ISSUE_CMD (sev_ioctl), answers SEV_PLATFORM_STATUS, which a VMM asks before a launch
/// (QEMU's sev_common_kvm_init); the other commands (SNP_PLATFORM_STATUS, PEK/PDH, GET_ID, SNP_COMMIT,
/// SNP_SET_CONFIG, VLEK) are not modelled: ENOTTY. The firmware behind it is <see cref="Arch.SevFirmware"/>, a model.
/// </summary>
internal sealed class SevDeviceFile(EmulatedKernel kernel) : KernelFile
{
    // misc device "sev" on devtmpfs; the inode number is the emulator's choice (no host with /dev/sev was probed).
    private const ulong DevTmpfsDevice = 6;
    private const ulong DevSevInode = 0x5e5;

    // include/uapi/linux/psp-sev.h: SEV_ISSUE_CMD = _IOWR('S', 0x0, struct sev_issue_cmd), the struct
    // { __u32 cmd; __u64 data; __u32 error; } __packed (16 bytes); enum sev_cmd.
    internal const uint SEV_ISSUE_CMD = 0xC0105300;
    internal const uint SEV_PLATFORM_STATUS = 1;
    internal const uint SEV_MAX = 13;
    private const int IssueCmdSize = 16, IssueCmdData = 4, IssueCmdError = 12;

    // crw------- like /dev/kvm.
    public override uint Mode => LinuxConstants.S_IFCHR | 0x180;

    public override ulong Device => DevTmpfsDevice;

    public override ulong Inode => DevSevInode;

    // MISC_MAJOR (10) with a dynamic minor (sev-dev.c sev_misc_init: MISC_DYNAMIC_MINOR; drivers/char/misc.c
    // misc_minor_alloc hands out DYNAMIC_MINORS - 1 = 127 first, then lower ones in registration order): 127 is the
    // emulator's choice, as no host with /dev/sev was probed.
    public override ulong RDevice => KernelStat.EncodeDevice(10, 127);

    public override bool CanPositionalIo => true;

    public override bool HasNoopLlseek => true;

    /// <summary>
    /// sev_ioctl: "if (ioctl != SEV_ISSUE_CMD) return -EINVAL;", copy_from_user of the struct (EFAULT),
    /// "if (input.cmd &gt; SEV_MAX) return -EINVAL;", the command, then the struct copied back (its error field).
    /// </summary>
    public override long Ioctl(uint request, IoctlArg arg)
    {
        if (request != SEV_ISSUE_CMD) return Err.EINVAL;
        if (!arg.IsPointer || arg.Buffer.Length < IssueCmdSize) return Err.EFAULT;
        var input = arg.Buffer[..IssueCmdSize];
        uint cmd = BinaryPrimitives.ReadUInt32LittleEndian(input);
        ulong data = BinaryPrimitives.ReadUInt64LittleEndian(input[IssueCmdData..]);
        if (cmd > SEV_MAX) return Err.EINVAL;
        uint error = BinaryPrimitives.ReadUInt32LittleEndian(input[IssueCmdError..]);
        long r = cmd switch
        {
            SEV_PLATFORM_STATUS => Arch.SevFirmware.PlatformStatus(kernel, data, ref error),
            _ => Err.ENOTTY,
        };
        if (r == Err.ENOTTY) return r;
        BinaryPrimitives.WriteUInt32LittleEndian(input[IssueCmdError..], error);
        return r;
    }
}

// SPDX-License-Identifier: MIT
using KvmSharp.Emulation.Vfs;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Fs;

/// <summary>
/// /dev/sev (drivers/crypto/ccp/sev-dev.c sev_fops): the descriptor a VMM passes as kvm_sev_cmd.sev_fd, which
/// sev_issue_cmd_external_user accepts only when <c>filep-&gt;f_op == &amp;sev_fops</c> (else -EBADF). It exists in the
/// emulated file system when the configuration offers an SEV VM type with the vendor hooks (kvm_amd + the PSP
/// driver). Its own ioctls (SEV_ISSUE_CMD: platform status, PEK/PDH management) are not modelled: ENOTTY, as
/// KernelFile answers an unknown request. The firmware behind it is <see cref="Arch.SevFirmware"/>, a model.
/// </summary>
internal sealed class SevDeviceFile : KernelFile
{
    // misc device "sev" on devtmpfs; the inode number is the emulator's choice (no host with /dev/sev was probed).
    private const ulong DevTmpfsDevice = 6;
    private const ulong DevSevInode = 0x5e5;

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
}

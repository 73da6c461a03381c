// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Kernel;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Tests;

/// <summary>
/// What an unchanged QEMU 10 asks of the emulated x86_64 kernel before an SEV/SNP launch (`kvmsharp exec` with
/// qemu-system-x86_64 -machine confidential-guest-support=…): the capabilities kvm-all.c kvm_required_capabilites and
/// target/i386/kvm/kvm.c kvm_arch_required_capabilities insist on, and /dev/sev's SEV_PLATFORM_STATUS, which
/// target/i386/sev.c sev_common_kvm_init issues before KVM_SEV_INIT2.
/// </summary>
public sealed class QemuSevStartupTests
{
    private const uint SevIssueCmd = 0xC010_5300;

    [Theory]
    [InlineData(21)] // KVM_CAP_DESTROY_MEMORY_REGION_WORKS
    [InlineData(30)] // KVM_CAP_JOIN_MEMORY_REGIONS_WORKS
    [InlineData(40)] // KVM_CAP_INTERNAL_ERROR_DATA
    [InlineData(98)] // KVM_CAP_ENABLE_CAP_VM
    [InlineData(105)] // KVM_CAP_CHECK_EXTENSION_VM
    [InlineData(7)] // KVM_CAP_EXT_CPUID
    [InlineData(37)] // KVM_CAP_SET_IDENTITY_MAP_ADDR
    [InlineData(51)] // KVM_CAP_X86_ROBUST_SINGLESTEP
    public void The_x86_64_preset_answers_1_for_a_cap_qemu_requires(int cap)
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        using var vm = kvm.CreateVm(VmType.Snp);
        Assert.Equal(1, kvm.CheckExtension(cap));
        Assert.Equal(1, vm.CheckExtension(cap));
    }

    [Fact]
    public void The_generic_caps_answer_on_arm64_too_but_not_the_x86_ones()
    {
        using var k = new EmulatedKernel(EmulatorConfig.Arm64());
        using var kvm = Kvm.Open(k, proposals: k.Config.Proposals);
        Assert.Equal(1, kvm.CheckExtension(21));
        Assert.Equal(1, kvm.CheckExtension(40));
        // x86.c only.
        Assert.Equal(0, kvm.CheckExtension(37));
    }

    [Fact]
    public void Sev_platform_status_reports_an_initialised_sev_es_capable_firmware()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        Assert.True(k.Open("/dev/sev", LinuxConstants.O_RDWR, out var fd) >= 0);
        using (fd)
        {
            var status = new PinnedArray<byte>(12);
            status.Span.Fill(0xee);
            byte[] cmd = Command(1, status.Address, error: 0xdead);
            Assert.Equal(0, k.Ioctl(fd!, SevIssueCmd, cmd));
            // struct sev_user_data_status: api 1.55, state INIT, flags CONFIG_ES, build 21, no guests.
            Assert.Equal([1, 55, 1], status.Span[..3].ToArray());
            Assert.Equal(0x100u, BinaryPrimitives.ReadUInt32LittleEndian(status.Span[3..]));
            Assert.Equal(21, status.Span[7]);
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(status.Span[8..]));
            // The firmware's status, SUCCESS, overwrites the caller's error field.
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(cmd.AsSpan(12)));
        }
    }

    [Fact]
    public void Sev_issue_cmd_checks_the_request_the_command_and_the_data_pointer()
    {
        using var k = new EmulatedKernel(EmulatorConfig.X86_64());
        Assert.True(k.Open("/dev/sev", LinuxConstants.O_RDWR, out var fd) >= 0);
        using (fd)
        {
            // sev_ioctl: "if (ioctl != SEV_ISSUE_CMD) return -EINVAL;" and "if (input.cmd > SEV_MAX) return -EINVAL;".
            Assert.Equal(-(long)Errno.EINVAL, k.Ioctl(fd!, 0xC010_5301, Command(1, 0)));
            Assert.Equal(-(long)Errno.EINVAL, k.Ioctl(fd!, SevIssueCmd, Command(14, 0)));
            // The struct itself unreadable, then the status to an address beyond TASK_SIZE_MAX: EFAULT.
            Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(fd!, SevIssueCmd, new byte[8]));
            Assert.Equal(-(long)Errno.EFAULT, k.Ioctl(fd!, SevIssueCmd, Command(1, ulong.MaxValue - 4)));
            // Key management is not modelled.
            Assert.Equal(-(long)Errno.ENOTTY, k.Ioctl(fd!, SevIssueCmd, Command(2, 0)));
        }
    }

    // struct sev_issue_cmd { __u32 cmd; __u64 data; __u32 error; } __packed.
    private static byte[] Command(uint cmd, ulong data, uint error = 0)
    {
        byte[] b = new byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(b, cmd);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(4), data);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), error);
        return b;
    }
}

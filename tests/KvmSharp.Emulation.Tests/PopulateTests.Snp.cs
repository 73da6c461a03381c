// SPDX-License-Identifier: MIT
// kvm_gmem_populate() through SEV-SNP KVM_SEV_SNP_LAUNCH_UPDATE (VM KVM_MEMORY_ENCRYPT_OP).
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Emulation.Tests;

public sealed partial class PopulateTests
{
    private long LaunchUpdate(EmulatedKernel k, KernelFd vm, UserBuffer paramsBuf, ref kvm_sev_snp_launch_update p, ref kvm_sev_cmd cmd)
    {
        paramsBuf.Write(0, p);
        cmd.id = KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE;
        cmd.data = paramsBuf.Address;
        // The firmware command of each page goes through kvm_sev_cmd.sev_fd (sev_gmem_post_populate).
        cmd.sev_fd = (uint)SevFd(k).Number;
        long rc = k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd));
        p = paramsBuf.Read<kvm_sev_snp_launch_update>(0);
        return rc;
    }

    private static kvm_sev_snp_launch_update Normal(ulong gfn, ulong uaddr, ulong pages) =>
        new() { gfn_start = gfn, uaddr = uaddr, len = pages * Ps, type = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_NORMAL };

    [Fact]
    public void Snp_launch_update_copies_the_source_and_advances_the_params()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var src = Source(2, 0xC0);
        var buf = Own(new UserBuffer(Ps));
        var p = Normal(Gfn, src.Address, 2);
        var cmd = new kvm_sev_cmd { error = 0x55, sev_fd = 7 };

        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));

        Assert.Equal(Gfn + 2, p.gfn_start);
        Assert.Equal(0UL, p.len);
        Assert.Equal(src.Address + 2 * Ps, p.uaddr);
        Assert.Equal(0x55u, cmd.error); // the cmd is copied back as read: no firmware error reported
        Assert.Equal(Pattern(0xC0), GuestPage(k, vm, Gfn));
        Assert.Equal(Pattern(0xC1), GuestPage(k, vm, Gfn + 1));
    }

    [Fact]
    public void Snp_zero_pages_ignore_uaddr_and_are_zero_filled()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        MakePrivate(k, vm, Gpa, 4 * Ps);
        var buf = Own(new UserBuffer(Ps));
        var p = new kvm_sev_snp_launch_update { gfn_start = Gfn, uaddr = 0xdead000, len = Ps, type = KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_ZERO };
        var cmd = new kvm_sev_cmd();
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(0xdead000UL, p.uaddr);
        Assert.Equal(Gfn + 1, p.gfn_start);
        Assert.True(Prepared(k, vm, Gfn));
        Assert.Equal(new byte[Ps], GuestPage(k, vm, Gfn));
    }

    [Fact]
    public void Snp_populate_failures_on_the_first_page_are_EIO_with_firmware_error_zero()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        var src = Source(1, 0x66);
        var buf = Own(new UserBuffer(Ps));

        // Not private.
        var p = Normal(Gfn, src.Address, 1);
        var cmd = new kvm_sev_cmd { error = 0x55 };
        Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(0u, cmd.error);
        Assert.Equal(Gfn, p.gfn_start); // params not copied back on failure

        MakePrivate(k, vm, Gpa, 4 * Ps);
        // Bad source address (copy_from_user fails) and a NULL source for a NORMAL page (6.18: WARN, EINVAL).
        foreach (ulong bad in new[] { Ps, 0UL })
        {
            p = Normal(Gfn, bad, 1);
            cmd = new kvm_sev_cmd { error = 0x55 };
            Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));
            Assert.Equal(0u, cmd.error);
            Assert.False(Prepared(k, vm, Gfn));
        }

        // Already populated: EIO for the first page; a later page failing yields partial success.
        p = Normal(Gfn + 1, src.Address, 1);
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        p = Normal(Gfn + 1, src.Address, 1);
        Assert.Equal(EIO, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        p = Normal(Gfn, src.Address, 2);
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        Assert.Equal(Gfn + 1, p.gfn_start);
        Assert.Equal(Ps, p.len);
        Assert.Equal(src.Address + Ps, p.uaddr);
    }

    [Fact]
    public void Snp_validation_runs_in_the_kernels_order()
    {
        var (k, vm, _) = Setup(KvmConstants.KVM_X86_SNP_VM);
        MakePrivate(k, vm, 0, 1UL << 40);
        var src = Source(1, 1);
        var buf = Own(new UserBuffer(Ps));
        var good = Normal(Gfn, src.Address, 1);

        // sev_mem_enc_ioctl: NULL argp → 0; short cmd → EFAULT; pre-SNP ids → EPERM; unknown id → EINVAL.
        Assert.Equal(0, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, 0UL));
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, new byte[23]));
        var cmd = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_INIT2, data = buf.Address };
        Assert.Equal(Raw.EPERM, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        cmd = new kvm_sev_cmd { id = 200, data = buf.Address };
        Assert.Equal(Raw.EINVAL, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        // snp_launch_update: params unreadable → EFAULT.
        cmd = new kvm_sev_cmd { id = KvmMemoryEncrypt.KVM_SEV_SNP_LAUNCH_UPDATE, data = Ps };
        Assert.Equal(Raw.EFAULT, k.Ioctl(vm, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, Raw.Bytes(ref cmd)));
        // len 0 / unaligned, flags, page types 0, 2 (VMSA) and 7 → EINVAL.
        foreach (var bad in new[]
        {
            good with { len = 0 }, good with { len = Ps + 1 }, good with { flags = 1 },
            good with { type = 0 }, good with { type = 2 }, good with { type = 7 },
        })
        {
            var p = bad;
            cmd = new kvm_sev_cmd();
            Assert.Equal(Raw.EINVAL, LaunchUpdate(k, vm, buf, ref p, ref cmd));
        }
        // No guest_memfd slot at gfn_start → EINVAL (checked before populating, not EIO).
        var noSlot = good with { gfn_start = 1 };
        cmd = new kvm_sev_cmd();
        Assert.Equal(Raw.EINVAL, LaunchUpdate(k, vm, buf, ref noSlot, ref cmd));
        // Padding is not validated: garbage in pad fields still succeeds.
        var padded = good with { pad0 = 9, pad1 = 9 };
        padded.pad2[3] = 9;
        cmd = new kvm_sev_cmd();
        Assert.Equal(0, LaunchUpdate(k, vm, buf, ref padded, ref cmd));
        // All page types but ZERO and SECRETS copy the source (the firmware's own checks are not modelled); SECRETS
        // is the firmware's secrets page (SnpPsp.SecretsPage: layout version 2 first), whatever the source.
        foreach (byte t in new[] { KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_UNMEASURED, KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS, KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_CPUID })
        {
            var p = Normal(Gfn + t - 3, src.Address, 1) with { type = t };
            cmd = new kvm_sev_cmd();
            Assert.Equal(0, LaunchUpdate(k, vm, buf, ref p, ref cmd));
            byte[] page = GuestPage(k, vm, Gfn + t - 3);
            if (t == KvmMemoryEncrypt.KVM_SEV_SNP_PAGE_TYPE_SECRETS)
            {
                Assert.NotEqual(Pattern(1), page);
                Assert.Equal(2u, BitConverter.ToUInt32(page, 0));
            }
            else
            {
                Assert.Equal(Pattern(1), page);
            }
        }
    }
}

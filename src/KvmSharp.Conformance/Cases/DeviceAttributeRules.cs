// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Memory;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_HAS/GET/SET_DEVICE_ATTR on x86 vCPUs (arch/x86/kvm/x86.c kvm_vcpu_ioctl_device_attr, kvm_arch_tsc_has_attr,
/// kvm_arch_tsc_get_attr, kvm_arch_tsc_set_attr: the TSC offset) and on /dev/kvm (kvm_arch_dev_ioctl,
/// kvm_x86_dev_get_attr: the supported XCR0), and how the TSC offset moves: vCPU creation (kvm_synchronize_tsc),
/// the attribute, a guest's WRMSR to IA32_TSC (kvm_set_msr_common → adjust_tsc_offset_guest).
/// </summary>
public static class DeviceAttributeRules
{
    /// <summary>A TSC distance no test takes to cover: 2^36 cycles is 28 s at 2.4 GHz (the emulator ticks at 1 GHz).</summary>
    private const ulong Slack = 1UL << 36;

    [ConformanceCase("x86.c kvm_vcpu_ioctl_device_attr: only group KVM_VCPU_TSC_CTRL, attribute KVM_VCPU_TSC_OFFSET (else ENXIO); flags unchecked; a bad value pointer is EFAULT for GET/SET, not for HAS; a VM fd has no device attributes (ENOTTY)")]
    public static void vcpu_tsc_offset_attribute_errnos(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        Assert.Equal(1, vm.CheckExtension(KvmCaps.KVM_CAP_VCPU_ATTRIBUTES));
        Assert.True(vcpu.SupportsTscOffset);
        Assert.True(vcpu.HasDeviceAttribute(KvmConstants.KVM_VCPU_TSC_CTRL, KvmConstants.KVM_VCPU_TSC_OFFSET));
        Assert.False(vcpu.HasDeviceAttribute(1, KvmConstants.KVM_VCPU_TSC_OFFSET));
        Assert.False(vcpu.HasDeviceAttribute(KvmConstants.KVM_VCPU_TSC_CTRL, 1));

        var value = new PinnedArray<ulong>(1);
        long Attr(KernelFd fd, uint request, uint group, ulong attribute, ulong addr, uint flags = 0)
        {
            var a = new kvm_device_attr { flags = flags, group = group, attr = attribute, addr = addr };
            long rc = ctx.Kernel.Ioctl(fd, request, System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<kvm_device_attr>(ref a)));
            GC.KeepAlive(value);
            return rc;
        }
        foreach (uint request in new[] { KvmIoctls.KVM_HAS_DEVICE_ATTR, KvmIoctls.KVM_GET_DEVICE_ATTR, KvmIoctls.KVM_SET_DEVICE_ATTR })
        {
            string name = KvmIoctls.NameOf(request);
            CaseContext.AssertErrno(Errno.ENXIO, Attr(vcpu.Handle, request, 1, 0, value.Address), $"{name} group 1");
            CaseContext.AssertErrno(Errno.ENXIO, Attr(vcpu.Handle, request, 0, 1, value.Address), $"{name} attr 1");
            CaseContext.AssertErrno(Errno.ENXIO, Attr(vcpu.Handle, request, uint.MaxValue, ulong.MaxValue, 0), $"{name} unknown group, addr 0");
            CaseContext.AssertErrno(Errno.ENOTTY, Attr(vm.Handle, request, 0, 0, value.Address), $"{name} on a VM fd");
            long bad = Attr(vcpu.Handle, request, 0, 0, 0);
            if (request == KvmIoctls.KVM_HAS_DEVICE_ATTR) Assert.Equal(0, bad);
            else CaseContext.AssertErrno(Errno.EFAULT, bad, $"{name} addr 0");
        }
        value.Span[0] = vcpu.GetTscOffset();
        Assert.Equal(0, Attr(vcpu.Handle, KvmIoctls.KVM_GET_DEVICE_ATTR, 0, 0, value.Address, flags: uint.MaxValue));
        Assert.Equal(0, Attr(vcpu.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, 0, 0, value.Address, flags: uint.MaxValue));
    }

    [ConformanceCase("x86.c kvm_arch_dev_ioctl, kvm_x86_dev_get_attr: /dev/kvm has KVM_X86_GRP_SYSTEM/KVM_X86_XCOMP_GUEST_SUPP = kvm_caps.supported_xcr0 (also the xstate_bv KVM_SET_XSAVE takes); other attributes ENXIO; no KVM_SET_DEVICE_ATTR (EINVAL)")]
    public static void system_attribute_supported_xcr0(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.True(kvm.HasDeviceAttribute(KvmConstants.KVM_X86_GRP_SYSTEM, KvmConstants.KVM_X86_XCOMP_GUEST_SUPP));
        Assert.False(kvm.HasDeviceAttribute(KvmConstants.KVM_X86_GRP_SYSTEM, 1));
        // This host and the preset offer no SEV VM type: no vendor dev_get_attr answers group 1.
        Assert.False(kvm.HasDeviceAttribute(KvmConstants.KVM_X86_GRP_SEV, KvmConstants.KVM_X86_SEV_VMSA_FEATURES));
        ulong xcr0 = kvm.GetSupportedXsaveFeatures();
        Assert.Equal(0x7UL, xcr0 & 0x7); // x87, SSE and AVX on every host of this project
        // The XSAVE image of a new vCPU can carry exactly these components (KVM_SET_XSAVE checks kvm_caps.supported_xcr0).
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        byte[] image = vcpu.GetXsave();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), xcr0);
        vcpu.SetXsave(image);
        ulong beyond = ~xcr0 & 0x7ff & ~0x18UL; // a user component this kernel lacks (not MPX's BNDREGS/BNDCSR)
        if (beyond != 0)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(image.AsSpan(XsaveArea.HeaderOffset), xcr0 | (beyond & (0 - beyond)));
            CaseContext.AssertErrno(Errno.EINVAL, () => vcpu.SetXsave(image));
        }

        var value = new PinnedArray<ulong>(1);
        var a = new kvm_device_attr { group = KvmConstants.KVM_X86_GRP_SYSTEM, attr = KvmConstants.KVM_X86_XCOMP_GUEST_SUPP, addr = value.Address };
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(new Span<kvm_device_attr>(ref a));
        CaseContext.AssertErrno(Errno.EINVAL, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, bytes), "KVM_SET_DEVICE_ATTR on /dev/kvm");
        a.addr = 0;
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_DEVICE_ATTR, bytes), "KVM_GET_DEVICE_ATTR addr 0");
        Assert.Equal(0, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_HAS_DEVICE_ATTR, bytes));
        GC.KeepAlive(value);
    }

    [ConformanceCase("x86.c kvm_arch_vcpu_postcreate → kvm_synchronize_tsc(vcpu, NULL): a VM's first vCPU starts at TSC 0, later ones match its offset; kvm_arch_tsc_set_attr: the offset set is read back, moves the TSC by as much, and becomes the one new vCPUs match")]
    public static void tsc_offset_at_creation_and_set(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var first = vm.CreateVcpu(0);
        ulong tsc0 = first.GetMsr(X86Msr.Tsc);
        ulong offset0 = first.GetTscOffset();
        using var second = vm.CreateVcpu(1);
        Assert.Equal(offset0, second.GetTscOffset());
        bool fixedOffset = HostDeviations.KvmPvmTscOffsetFixed(ctx.Target.IsReal);
        if (fixedOffset) Assert.Equal(0UL, offset0);
        else Assert.True(tsc0 < Slack, $"a new VM's first vCPU reads TSC 0x{tsc0:X}");

        const ulong Shift = 1UL << 44;
        ulong before = first.GetMsr(X86Msr.Tsc);
        first.SetTscOffset(offset0 + Shift);
        ulong after = first.GetMsr(X86Msr.Tsc);
        ulong offset1 = first.GetTscOffset();
        using var third = vm.CreateVcpu(2);
        if (fixedOffset)
        {
            Assert.Equal(0UL, offset1);
            Assert.True(after - before < Slack, $"TSC 0x{before:X} → 0x{after:X}");
            return;
        }
        Assert.Equal(offset0 + Shift, offset1);
        Assert.True(after - before - Shift < Slack, $"TSC 0x{before:X} → 0x{after:X} after moving the offset by 0x{Shift:X}");
        Assert.Equal(offset1, third.GetTscOffset());
        Assert.Equal(offset0, second.GetTscOffset()); // the vCPUs that exist keep theirs
    }

    [ConformanceCase("x86.c kvm_set_msr_common MSR_IA32_TSC: a guest's WRMSR moves the vCPU's TSC offset (adjust_tsc_offset_guest), which RDTSC, KVM_GET_MSRS and KVM_VCPU_TSC_OFFSET then show; writing the old offset back (kvm_arch_tsc_set_attr) undoes it")]
    public static void guest_tsc_write_moves_the_offset(CaseContext ctx)
    {
        const ulong Written = 1UL << 50;
        using var kvm = ctx.OpenKvm();
        using var g = IdtGuest.Create(kvm, a =>
        {
            a.mov(ecx, unchecked((int)X86Msr.Tsc));
            a.xor(eax, eax);
            a.mov(edx, (int)(Written >> 32));
            a.wrmsr();
            a.rdtsc();
            a.shl(rdx, 32);
            a.or(rax, rdx);
            a.mov(r8, rax);
            a.hlt();
        }, []);
        ulong offset0 = g.Vcpu.GetTscOffset();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        Assert.Empty(g.Deliveries);
        ulong rdtsc = g.Vcpu.GetRegs().r8;
        ulong msr = g.Vcpu.GetMsr(X86Msr.Tsc);
        ulong offset1 = g.Vcpu.GetTscOffset();
        if (HostDeviations.KvmPvmTscWriteIgnored(ctx.Target.IsReal))
        {
            Assert.True(rdtsc < Written && msr < Written, $"RDTSC 0x{rdtsc:X}, IA32_TSC 0x{msr:X}");
            return;
        }
        Assert.True(rdtsc - Written < Slack, $"RDTSC after WRMSR 0x{Written:X} reads 0x{rdtsc:X}");
        Assert.True(msr >= rdtsc && msr - Written < Slack, $"IA32_TSC reads 0x{msr:X} after RDTSC 0x{rdtsc:X}");
        Assert.True(offset1 - offset0 - Written + Slack < 2 * Slack, $"offset 0x{offset0:X} → 0x{offset1:X}");
        g.Vcpu.SetTscOffset(offset0);
        Assert.True(g.Vcpu.GetMsr(X86Msr.Tsc) < Written, "the creation offset written back rewinds the guest's change");
    }
}

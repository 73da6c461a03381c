// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using Xunit;
using static KvmSharp.Conformance.CaseContext;

namespace KvmSharp.Conformance.Cases;

/// <summary>KVM_PRE_FAULT_MEMORY (virt/kvm/kvm_main.c kvm_vcpu_pre_fault_memory; kernel-spec.md §2.8).</summary>
public static class PreFaultMemoryRules
{
    [ConformanceCase("virt/kvm/kvm_main.c kvm_vcpu_pre_fault_memory: flags, alignment and wrap checks")]
    public static void pre_fault_argument_checks(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var guest = RealModeGuest.Create(kvm, a => a.hlt());
        long cap = guest.Vm.CheckExtension(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY);
        ulong ps = (ulong)PageSize;
        long Call(ulong gpa, ulong size, ulong flags)
        {
            var args = new kvm_pre_fault_memory { gpa = gpa, size = size, flags = flags };
            return ctx.Kernel.Ioctl(guest.Vcpu.Handle, KvmIoctls.KVM_PRE_FAULT_MEMORY, MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref args, 1)));
        }
        if (cap == 0)
        {
            // The ioctl exists only where the arch supports it (x86: TDP). Record what this kernel answers.
            long rc = Call(RealModeGuest.Gpa, ps, 0);
            Assert.True(rc < 0, $"KVM_PRE_FAULT_MEMORY succeeded although KVM_CAP_PRE_FAULT_MEMORY is 0 (rc {rc})");
            Assert.Throws<KvmCapabilityException>(() => guest.Vcpu.PreFaultMemory(RealModeGuest.Gpa, ps));
            return;
        }
        AssertErrno(Errno.EINVAL, Call(RealModeGuest.Gpa, ps, 1), "flags != 0");
        AssertErrno(Errno.EINVAL, Call(RealModeGuest.Gpa, 0, 0), "size 0");
        AssertErrno(Errno.EINVAL, Call(RealModeGuest.Gpa + 1, ps, 0), "unaligned gpa");
        AssertErrno(Errno.EINVAL, Call(RealModeGuest.Gpa, ps - 1, 0), "unaligned size");
        AssertErrno(Errno.EINVAL, Call(ulong.MaxValue - ps + 1, 2 * ps, 0), "gpa + size wraps");
        Assert.Equal(0UL, guest.Vcpu.PreFaultMemory(RealModeGuest.Gpa, RealModeGuest.Size));
    }
}

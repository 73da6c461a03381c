// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Tests.Abi;

/// <summary>Every uAPI struct's size and field offsets, against include/uapi/linux/kvm.h (and kernel-spec.md §1.2).</summary>
public class StructLayoutTests
{
    [Theory]
    [InlineData(typeof(kvm_create_guest_memfd), 64)]
    [InlineData(typeof(kvm_userspace_memory_region), 32)]
    [InlineData(typeof(kvm_userspace_memory_region2), 160)]
    [InlineData(typeof(kvm_memory_attributes), 32)]
    [InlineData(typeof(kvm_memory_attributes2), 128)]
    [InlineData(typeof(kvm_pre_fault_memory), 64)]
    [InlineData(typeof(kvm_create_device), 12)]
    [InlineData(typeof(kvm_regs), 144)]
    [InlineData(typeof(kvm_segment), 24)]
    [InlineData(typeof(kvm_dtable), 16)]
    [InlineData(typeof(kvm_sregs), 312)]
    [InlineData(typeof(kvm_xsave), 4096)] // __u32 region[1024]; the flexible extra[] adds nothing
    [InlineData(typeof(kvm_guest_debug_arch), 64)]
    [InlineData(typeof(kvm_guest_debug), 72)]
    [InlineData(typeof(kvm_debug_exit_arch), 32)]
    [InlineData(typeof(kvm_dirty_gfn), 16)]
    public void Struct_has_the_kernel_size(Type type, int size) => Assert.Equal(size, Marshal.SizeOf(type));

    [Theory]
    // struct kvm_guest_debug, kvm_debug_exit_arch (KVM_SET_GUEST_DEBUG, KVM_EXIT_DEBUG)
    [InlineData(typeof(kvm_guest_debug), nameof(kvm_guest_debug.control), 0)]
    [InlineData(typeof(kvm_guest_debug), nameof(kvm_guest_debug.pad), 4)]
    [InlineData(typeof(kvm_guest_debug), nameof(kvm_guest_debug.arch), 8)]
    [InlineData(typeof(kvm_debug_exit_arch), nameof(kvm_debug_exit_arch.exception), 0)]
    [InlineData(typeof(kvm_debug_exit_arch), nameof(kvm_debug_exit_arch.pad), 4)]
    [InlineData(typeof(kvm_debug_exit_arch), nameof(kvm_debug_exit_arch.pc), 8)]
    [InlineData(typeof(kvm_debug_exit_arch), nameof(kvm_debug_exit_arch.dr6), 16)]
    [InlineData(typeof(kvm_debug_exit_arch), nameof(kvm_debug_exit_arch.dr7), 24)]
    // struct kvm_create_guest_memfd
    [InlineData(typeof(kvm_create_guest_memfd), nameof(kvm_create_guest_memfd.size), 0)]
    [InlineData(typeof(kvm_create_guest_memfd), nameof(kvm_create_guest_memfd.flags), 8)]
    // struct kvm_dirty_gfn (the dirty ring's entries)
    [InlineData(typeof(kvm_dirty_gfn), nameof(kvm_dirty_gfn.flags), 0)]
    [InlineData(typeof(kvm_dirty_gfn), nameof(kvm_dirty_gfn.slot), 4)]
    [InlineData(typeof(kvm_dirty_gfn), nameof(kvm_dirty_gfn.offset), 8)]
    [InlineData(typeof(kvm_create_guest_memfd), nameof(kvm_create_guest_memfd.reserved), 16)]
    // struct kvm_userspace_memory_region
    [InlineData(typeof(kvm_userspace_memory_region), nameof(kvm_userspace_memory_region.slot), 0)]
    [InlineData(typeof(kvm_userspace_memory_region), nameof(kvm_userspace_memory_region.flags), 4)]
    [InlineData(typeof(kvm_userspace_memory_region), nameof(kvm_userspace_memory_region.guest_phys_addr), 8)]
    [InlineData(typeof(kvm_userspace_memory_region), nameof(kvm_userspace_memory_region.memory_size), 16)]
    [InlineData(typeof(kvm_userspace_memory_region), nameof(kvm_userspace_memory_region.userspace_addr), 24)]
    // struct kvm_userspace_memory_region2
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.slot), 0)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.flags), 4)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.guest_phys_addr), 8)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.memory_size), 16)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.userspace_addr), 24)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.guest_memfd_offset), 32)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.guest_memfd), 40)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.pad1), 44)]
    // PROPOSAL, [PATCH v3 04/15]: userfault_bitmap takes upstream's pad2[0]; pad2[13] follows it
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.userfault_bitmap), 48)]
    [InlineData(typeof(kvm_userspace_memory_region2), nameof(kvm_userspace_memory_region2.pad2), 56)]
    // struct kvm_memory_attributes
    [InlineData(typeof(kvm_memory_attributes), nameof(kvm_memory_attributes.address), 0)]
    [InlineData(typeof(kvm_memory_attributes), nameof(kvm_memory_attributes.size), 8)]
    [InlineData(typeof(kvm_memory_attributes), nameof(kvm_memory_attributes.attributes), 16)]
    [InlineData(typeof(kvm_memory_attributes), nameof(kvm_memory_attributes.flags), 24)]
    // struct kvm_memory_attributes2 (v8): the first four fields match kvm_memory_attributes (static_assert in kvm_main.c)
    [InlineData(typeof(kvm_memory_attributes2), nameof(kvm_memory_attributes2.offset), 0)]
    [InlineData(typeof(kvm_memory_attributes2), nameof(kvm_memory_attributes2.size), 8)]
    [InlineData(typeof(kvm_memory_attributes2), nameof(kvm_memory_attributes2.attributes), 16)]
    [InlineData(typeof(kvm_memory_attributes2), nameof(kvm_memory_attributes2.flags), 24)]
    [InlineData(typeof(kvm_memory_attributes2), nameof(kvm_memory_attributes2.error_offset), 32)]
    [InlineData(typeof(kvm_memory_attributes2), nameof(kvm_memory_attributes2.reserved), 40)]
    // struct kvm_pre_fault_memory
    [InlineData(typeof(kvm_pre_fault_memory), nameof(kvm_pre_fault_memory.gpa), 0)]
    [InlineData(typeof(kvm_pre_fault_memory), nameof(kvm_pre_fault_memory.size), 8)]
    [InlineData(typeof(kvm_pre_fault_memory), nameof(kvm_pre_fault_memory.flags), 16)]
    [InlineData(typeof(kvm_pre_fault_memory), nameof(kvm_pre_fault_memory.padding), 24)]
    // struct kvm_regs
    [InlineData(typeof(kvm_regs), nameof(kvm_regs.rax), 0)]
    [InlineData(typeof(kvm_regs), nameof(kvm_regs.rsp), 48)]
    [InlineData(typeof(kvm_regs), nameof(kvm_regs.r8), 64)]
    [InlineData(typeof(kvm_regs), nameof(kvm_regs.r15), 120)]
    [InlineData(typeof(kvm_regs), nameof(kvm_regs.rip), 128)]
    [InlineData(typeof(kvm_regs), nameof(kvm_regs.rflags), 136)]
    // struct kvm_segment
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.@base), 0)]
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.limit), 8)]
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.selector), 12)]
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.type), 14)]
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.present), 15)]
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.l), 19)]
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.unusable), 22)]
    [InlineData(typeof(kvm_segment), nameof(kvm_segment.padding), 23)]
    // struct kvm_sregs
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.cs), 0)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.ds), 24)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.ss), 120)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.tr), 144)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.ldt), 168)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.gdt), 192)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.idt), 208)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.cr0), 224)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.cr3), 240)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.cr4), 248)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.efer), 264)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.apic_base), 272)]
    [InlineData(typeof(kvm_sregs), nameof(kvm_sregs.interrupt_bitmap), 280)]
    public void Field_has_the_kernel_offset(Type type, string field, int offset) =>
        Assert.Equal(offset, (int)Marshal.OffsetOf(type, field));

    [Fact]
    public void Reserved_arrays_have_the_kernel_lengths()
    {
        Assert.Equal(48, Unsafe.SizeOf<U64x6>());   // kvm_create_guest_memfd.reserved[6]
        Assert.Equal(112, Unsafe.SizeOf<U64x14>()); // upstream kvm_userspace_memory_region2.pad2[14]
        Assert.Equal(104, Unsafe.SizeOf<U64x13>()); // kvm_userspace_memory_region2.pad2[13] under KVM Userfault v3
        Assert.Equal(88, Unsafe.SizeOf<U64x11>());  // kvm_memory_attributes2.reserved[11]
        Assert.Equal(40, Unsafe.SizeOf<U64x5>());   // kvm_pre_fault_memory.padding[5]
    }

    [Fact]
    public void Debug_exit_sits_at_the_start_of_the_kvm_run_exit_union()
    {
        // Probed on the host: offsetof(struct kvm_run, debug) = 32.
        Assert.Equal(32, KvmRunLayout.debug_arch_exception);
        Assert.Equal(KvmRunLayout.debug_arch_pc, KvmRunLayout.exit_union + (int)Marshal.OffsetOf<kvm_debug_exit_arch>(nameof(kvm_debug_exit_arch.pc)));
        Assert.Equal(KvmRunLayout.debug_arch_dr6, KvmRunLayout.exit_union + (int)Marshal.OffsetOf<kvm_debug_exit_arch>(nameof(kvm_debug_exit_arch.dr6)));
        Assert.Equal(KvmRunLayout.debug_arch_dr7, KvmRunLayout.exit_union + (int)Marshal.OffsetOf<kvm_debug_exit_arch>(nameof(kvm_debug_exit_arch.dr7)));
        Assert.Equal(0x1f0003u, KvmConstants.KVM_GUESTDBG_ENABLE | KvmConstants.KVM_GUESTDBG_SINGLESTEP | KvmConstants.KVM_GUESTDBG_USE_SW_BP
            | KvmConstants.KVM_GUESTDBG_USE_HW_BP | KvmConstants.KVM_GUESTDBG_INJECT_DB | KvmConstants.KVM_GUESTDBG_INJECT_BP
            | KvmConstants.KVM_GUESTDBG_BLOCKIRQ);
    }
}

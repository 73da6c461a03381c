// SPDX-License-Identifier: MIT
using KvmSharp.Emulation;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// The typed helpers around private/shared conversion (MemoryAttributes, MakePrivate/MakeShared,
/// SupportedGuestMemfdMemoryAttributes, MemorySlot.MemfdOffsetOf, VcpuExit.MemoryFaultIsPrivate) on the emulated kernel
/// with in-place conversion v8 — the only kernel here that converts guest_memfd pages.
/// </summary>
public sealed class TypedAttributesTests
{
    [Fact]
    public void MakePrivate_and_MakeShared_convert_and_the_vm_says_which_attributes_it_takes()
    {
        using var emulated = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using var kvm = Kvm.Open(emulated, proposals: emulated.Config.Proposals);
        using (var plain = kvm.CreateVm())
            Assert.Equal(MemoryAttributes.None, plain.SupportedGuestMemfdMemoryAttributes);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        Assert.Equal(MemoryAttributes.Private, vm.SupportedGuestMemfdMemoryAttributes);
        // v8 patch 10: the per-VM attribute is off once the guest_memfd holds them.
        Assert.Equal(MemoryAttributes.None, vm.SupportedMemoryAttributes);

        using var gmem = vm.CreateGuestMemfd(0x4000, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var map = gmem.Map();
        map.Write<uint>(0x1000, 0xBEEF);
        gmem.MakePrivate(0x1000, 0x1000);
        Assert.False(gmem.IsShared(0x1000, 1));
        Assert.Throws<GuestMemoryFaultException>(() => map.Read<uint>(0x1000));
        gmem.MakeShared(0x1000, 0x1000);
        Assert.Equal(0xBEEFu, map.Read<uint>(0x1000)); // SW_PROTECTED keeps contents both ways
    }

    [Fact]
    public void MemfdOffsetOf_maps_a_gpa_of_the_slot_and_refuses_others()
    {
        using var emulated = new EmulatedKernel(EmulatorConfig.X86_64(inPlaceConversion: true));
        using var kvm = Kvm.Open(emulated, proposals: emulated.Config.Proposals);
        using var vm = kvm.CreateVm(VmType.SwProtected);
        using var gmem = vm.CreateGuestMemfd(0x400000, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var slot = vm.AddGuestMemfdSlot(slot: 0, guestPhysicalAddress: 0x1_0000_0000, size: 0x200000, gmem, offset: 0x200000);
        Assert.Equal(0x200000UL, slot.MemfdOffsetOf(0x1_0000_0000));
        Assert.Equal(0x3FF000UL, slot.MemfdOffsetOf(0x1_001F_F000));
        Assert.Throws<ArgumentOutOfRangeException>(() => slot.MemfdOffsetOf(0x1_0020_0000));
        Assert.Throws<ArgumentOutOfRangeException>(() => slot.MemfdOffsetOf(0xFFFF_F000));

        using var memory = vm.AllocateMemory(0x200000);
        using var plain = vm.AddMemorySlot(slot: 1, guestPhysicalAddress: 0, memory);
        Assert.Throws<InvalidOperationException>(() => plain.MemfdOffsetOf(0));
    }
}

// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Vmm;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// A tiny real-mode guest: one slot at <see cref="Gpa"/>, code at offset 0, CS = DS = the slot's base, so a 16-bit
/// address in the code is an offset into the slot. The slot is a MMAP|INIT_SHARED guest_memfd when the kernel offers
/// one (the default, or <see cref="GuestMemoryBacking.GuestMemfd"/> by request), else ordinary host memory
/// (<see cref="GuestMemoryBacking.HostMemory"/>): cases about KVM_RUN and the CPU run on a kernel without guest_memfd
/// too. Code is assembled with Iced, never hand-typed.
/// </summary>
public sealed class RealModeGuest : IDisposable
{
    public const ulong Gpa = 0x10000;
    public const ulong Size = 0x10000;

    private RealModeGuest(Vm vm, GuestMemfd? memfd, AnonymousMemory? host, MemorySlot slot, Vcpu vcpu)
    {
        Vm = vm;
        Memfd = memfd;
        Host = host;
        Slot = slot;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    /// <summary>The slot's guest_memfd; null with <see cref="GuestMemoryBacking.HostMemory"/>.</summary>
    public GuestMemfd? Memfd { get; }

    /// <summary>The slot's host memory; null with <see cref="GuestMemoryBacking.GuestMemfd"/>.</summary>
    public AnonymousMemory? Host { get; }

    public MemorySlot Slot { get; }

    public Vcpu Vcpu { get; }

    public GuestMemoryBacking Backing => Memfd is null ? GuestMemoryBacking.HostMemory : GuestMemoryBacking.GuestMemfd;

    /// <summary>
    /// Creates the guest in the memory <paramref name="backing"/> names (null: guest_memfd when the VM offers
    /// MMAP|INIT_SHARED, else host memory); with <paramref name="mapForUserspace"/> = false a guest_memfd slot's
    /// userspace_addr is 0 instead of the SDK's default mapping of the same file.
    /// </summary>
    public static RealModeGuest Create(Kvm kvm, Action<Assembler> program, bool mapForUserspace = true, GuestMemoryBacking? backing = null)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(program);
        var vm = kvm.CreateVm();
        GuestMemfd? memfd = null;
        AnonymousMemory? host = null;
        MemorySlot? slot = null;
        try
        {
            byte[] code = Assemble(program);
            if ((backing ?? GuestMemory.BestBacking(vm)) == GuestMemoryBacking.GuestMemfd)
            {
                memfd = vm.CreateGuestMemfd(Size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
                using (var loader = memfd.Map())
                {
                    loader.Write(0, code);
                }
                slot = vm.AddGuestMemfdSlot(0, Gpa, Size, memfd, mapForUserspace: mapForUserspace);
            }
            else
            {
                host = vm.AllocateMemory(Size);
                host.Write(0, code);
                slot = vm.AddMemorySlot(0, Gpa, host);
            }
            var vcpu = vm.CreateVcpu(0);
            var sregs = vcpu.GetSregs();
            foreach (ref var seg in new SegmentRefs(ref sregs))
            {
                seg.@base = Gpa;
                seg.selector = (ushort)(Gpa >> 4);
            }
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
            return new RealModeGuest(vm, memfd, host, slot, vcpu);
        }
        catch
        {
            slot?.Dispose();
            memfd?.Dispose();
            host?.Dispose();
            vm.Dispose();
            throw;
        }
    }

    /// <summary>Reads the slot at <paramref name="offset"/> through its host view (the gmem mapping or the host memory).</summary>
    public T Read<T>(ulong offset) where T : unmanaged =>
        Slot.Mapping is { } mapping ? mapping.Read<T>(offset)
        : Host is { } host ? host.Read<T>(offset)
        : throw new InvalidOperationException("the slot has no userspace mapping (mapForUserspace: false)");

    public static byte[] Assemble(Action<Assembler> program)
    {
        var asm = new Assembler(16);
        program(asm);
        using var stream = new MemoryStream();
        asm.Assemble(new StreamCodeWriter(stream), 0);
        return stream.ToArray();
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Slot.Dispose();
        Memfd?.Dispose();
        Host?.Dispose();
        Vm.Dispose();
    }

    /// <summary>cs and ds of a kvm_sregs, by reference.</summary>
    private ref struct SegmentRefs
    {
        private readonly ref kvm_sregs _sregs;
        private int _index;

        public SegmentRefs(ref kvm_sregs sregs)
        {
            _sregs = ref sregs;
            _index = -1;
        }

        public readonly SegmentRefs GetEnumerator() => this;

        public bool MoveNext() => ++_index < 2;

        public readonly ref kvm_segment Current => ref (_index == 0 ? ref _sregs.cs : ref _sregs.ds);
    }
}

// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;

namespace KvmSharp.Conformance.Guests;

/// <summary>
/// A tiny real-mode guest: one guest_memfd slot at <see cref="Gpa"/>, code at file offset 0, CS = DS = the slot's
/// base, so a 16-bit address in the code is a file offset. Code is assembled with Iced, never hand-typed.
/// </summary>
public sealed class RealModeGuest : IDisposable
{
    public const ulong Gpa = 0x10000;
    public const ulong Size = 0x10000;

    private RealModeGuest(Vm vm, GuestMemfd memfd, MemorySlot slot, Vcpu vcpu)
    {
        Vm = vm;
        Memfd = memfd;
        Slot = slot;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    public GuestMemfd Memfd { get; }

    public MemorySlot Slot { get; }

    public Vcpu Vcpu { get; }

    /// <summary>
    /// Creates the guest; with <paramref name="mapForUserspace"/> = false the slot's userspace_addr is 0 instead of
    /// the SDK's default mapping of the same file.
    /// </summary>
    public static RealModeGuest Create(Kvm kvm, Action<Assembler> program, bool mapForUserspace = true)
    {
        var vm = kvm.CreateVm();
        GuestMemfd? memfd = null;
        MemorySlot? slot = null;
        try
        {
            memfd = vm.CreateGuestMemfd(Size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
            using (var loader = memfd.Map())
            {
                loader.Write(0, Assemble(program));
            }
            slot = vm.AddGuestMemfdSlot(0, Gpa, Size, memfd, mapForUserspace: mapForUserspace);
            var vcpu = vm.CreateVcpu(0);
            var sregs = vcpu.GetSregs();
            foreach (ref var seg in new SegmentRefs(ref sregs))
            {
                seg.@base = Gpa;
                seg.selector = (ushort)(Gpa >> 4);
            }
            vcpu.SetSregs(sregs);
            vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
            return new RealModeGuest(vm, memfd, slot, vcpu);
        }
        catch
        {
            slot?.Dispose();
            memfd?.Dispose();
            vm.Dispose();
            throw;
        }
    }

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
        Memfd.Dispose();
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

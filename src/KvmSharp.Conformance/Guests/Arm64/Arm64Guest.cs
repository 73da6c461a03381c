// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Vmm;
using KvmSharp.Vmm.Arch.Arm64;

namespace KvmSharp.Conformance.Guests.Arm64;

/// <summary>
/// A small arm64 guest the way tools/testing/selftests/kvm/lib/arm64/processor.c sets one up before paging:
/// KVM_ARM_PREFERRED_TARGET + KVM_ARM_VCPU_INIT with PSCI 0.2, code in slot 0 at GPA 0 — a MMAP|INIT_SHARED
/// guest_memfd when the kernel offers one, else ordinary host memory (these guests test the CPU and KVM_RUN) — PC and
/// SP_EL1 set through KVM_SET_ONE_REG. The MMU stays off (addresses are guest-physical). Layout of slot 0: the exception
/// vectors at 0 (VBAR_EL1 resets to 0; an optional handler at 0x200, "current EL with SP_ELx, synchronous"),
/// code at <see cref="CodeGpa"/>, the stack below <see cref="Size"/>.
/// </summary>
public sealed class Arm64Guest : IDisposable
{
    public const ulong Size = 0x10000;
    public const ulong SyncVectorGpa = 0x200;
    public const ulong CodeGpa = 0x800;

    /// <summary>
    /// lib/arm64/ucall.c: the guest reports by writing to an address no memslot covers (an MMIO exit). Here the
    /// 8-byte value written is the ucall code itself.
    /// </summary>
    public const ulong UcallMmioGpa = 0x0100_0000;

    public const ulong UcallDone = 1;
    public const ulong UcallFail = 2;

    private Arm64Guest(Vm vm, GuestMemfd? memfd, AnonymousMemory? host, MemorySlot slot, Vcpu vcpu)
    {
        Vm = vm;
        Memfd = memfd;
        Host = host;
        Slot = slot;
        Vcpu = vcpu;
    }

    public Vm Vm { get; }

    /// <summary>Slot 0's guest_memfd; null when the kernel has none and slot 0 is host memory.</summary>
    public GuestMemfd? Memfd { get; }

    /// <summary>Slot 0's host memory; null when it is a guest_memfd.</summary>
    public AnonymousMemory? Host { get; }

    public MemorySlot Slot { get; }

    public Vcpu Vcpu { get; }

    public static Arm64Guest Create(Kvm kvm, Action<A64Assembler> program, Action<A64Assembler>? syncVector = null)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(program);
        var vm = kvm.CreateVm();
        GuestMemfd? memfd = null;
        AnonymousMemory? host = null;
        MemorySlot? slot = null;
        try
        {
            byte[]? vector = syncVector is null ? null : Assemble(syncVector);
            byte[] code = Assemble(program);
            if (GuestMemory.BestBacking(vm) == GuestMemoryBacking.GuestMemfd)
            {
                memfd = vm.CreateGuestMemfd(Size, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
                using (var loader = memfd.Map())
                {
                    if (vector is not null) loader.Write(SyncVectorGpa, vector);
                    loader.Write(CodeGpa, code);
                }
                slot = vm.AddGuestMemfdSlot(0, 0, Size, memfd);
            }
            else
            {
                host = vm.AllocateMemory(Size);
                if (vector is not null) host.Write(SyncVectorGpa, vector);
                host.Write(CodeGpa, code);
                slot = vm.AddMemorySlot(0, 0, host);
            }
            var vcpu = vm.CreateVcpu(0);
            vcpu.InitPreferred();
            vcpu.SetPc(CodeGpa);
            vcpu.SetOneReg(KvmArm64Regs.SpEl1, Size);
            return new Arm64Guest(vm, memfd, host, slot, vcpu);
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

    public static byte[] Assemble(Action<A64Assembler> program)
    {
        ArgumentNullException.ThrowIfNull(program);
        var asm = new A64Assembler();
        program(asm);
        return asm.Assemble();
    }

    /// <summary>GUEST_UCALL: x9 = <paramref name="code"/>, then STR x9 to <see cref="UcallMmioGpa"/> (uses x9, x10).</summary>
    public static void Ucall(A64Assembler a, ulong code)
    {
        ArgumentNullException.ThrowIfNull(a);
        a.MovImm(A64Register.X(9), code);
        a.MovImm(A64Register.X(10), UcallMmioGpa);
        a.Str(A64Register.X(9), A64Register.X(10));
    }

    /// <summary>PSCI SYSTEM_OFF: x0 = PSCI_0_2_FN_SYSTEM_OFF, HVC #0.</summary>
    public static void SystemOff(A64Assembler a)
    {
        ArgumentNullException.ThrowIfNull(a);
        a.MovImm(A64Register.X(0), 0x8400_0008);
        a.Hvc();
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Slot.Dispose();
        Memfd?.Dispose();
        Host?.Dispose();
        Vm.Dispose();
    }
}

/// <summary>Reads kvm_run fields the typed <see cref="VcpuExit"/> does not decode.</summary>
public static class Arm64RunPage
{
    /// <summary>kvm_run.system_event.type and .ndata, through a fresh read-only mapping of the vCPU fd.</summary>
    public static (uint Type, uint Ndata) SystemEvent(Vcpu vcpu)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        long rc = Memory.MappedRegion.Map(vcpu.Vm.Kernel, vcpu.Handle, (ulong)Environment.SystemPageSize,
            Kernel.LinuxConstants.PROT_READ, Kernel.LinuxConstants.MAP_SHARED, 0, out var region);
        if (rc < 0) throw new Kernel.KvmException("mmap", (int)-rc, "kvm_run");
        using (region)
        {
            var bytes = region!.GetSpan((ulong)Abi.KvmRunLayout.system_event_type, 8);
            return (BitConverter.ToUInt32(bytes), BitConverter.ToUInt32(bytes[4..]));
        }
    }
}

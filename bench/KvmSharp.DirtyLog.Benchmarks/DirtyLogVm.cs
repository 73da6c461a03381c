// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Abi;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.DirtyLog.Benchmarks;

/// <summary>
/// The VM both sides poll, set up through the SDK here and with raw ioctls in dirtylog_ref.c: one slot of
/// <see cref="MemorySize"/> (1 GiB = 262 144 pages, a 32 KiB bitmap) of MAP_PRIVATE anonymous memory at GPA 0 with
/// LOG_DIRTY_PAGES, optionally with manual protect; one real-mode vCPU whose code lives inside that slot at
/// <see cref="CodeGpa"/> (code fetches do not dirty pages). Each KVM_RUN of the guest (<see cref="Code"/>) writes
/// one byte to each of <c>pages</c> consecutive pages from <see cref="FirstPage"/> and halts; the next run starts
/// over. The SDK side reads into one reusable <see cref="DirtyPageLog"/> (<see cref="Log"/>).
/// </summary>
internal sealed class DirtyLogVm : IDisposable
{
    public const ulong MemorySize = 1UL << 30;
    public const ulong CodeGpa = 0x10000;

    /// <summary>The first page the guest writes (GPA 0x20000); real mode reaches up to page 255.</summary>
    public const int FirstPage = 32;

    public const int MaxPages = 256 - FirstPage;

    private DirtyLogVm(Kvm kvm, Vm vm, AnonymousMemory memory, MemorySlot slot, Vcpu vcpu)
    {
        Kvm = kvm;
        Vm = vm;
        Memory = memory;
        Slot = slot;
        Vcpu = vcpu;
        Log = slot.AllocateDirtyLog();
    }

    public Kvm Kvm { get; }
    public Vm Vm { get; }
    public AnonymousMemory Memory { get; }
    public MemorySlot Slot { get; }
    public Vcpu Vcpu { get; }

    /// <summary>The reusable log (one pinned bitmap for the slot).</summary>
    public DirtyPageLog Log { get; }

    /// <summary>
    /// The guest, real mode at <see cref="CodeGpa"/> (CS = DS = 0x1000 on entry):
    /// <c>start: mov ax, seg(FirstPage); mov cx, pages; next: mov ds, ax; mov byte [0], 1; add ax, 0x100; loop next;
    /// hlt; jmp start</c>.
    /// </summary>
    public static byte[] Code(int pages)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pages);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pages, MaxPages);
        int pageSize = Environment.SystemPageSize;
        var a = new Assembler(16);
        Label start = a.CreateLabel(), next = a.CreateLabel();
        a.Label(ref start);
        a.mov(ax, (ushort)(FirstPage * pageSize >> 4));
        a.mov(cx, (ushort)pages);
        a.Label(ref next);
        a.mov(ds, ax);
        a.mov(__byte_ptr[0], (byte)1);
        a.add(ax, (ushort)(pageSize >> 4));
        a.loop(next);
        a.hlt();
        a.jmp(start);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), 0);
        return stream.ToArray();
    }

    public static DirtyLogVm Create(bool manualProtect, int pages)
    {
        byte[] code = Code(pages);
        var kvm = Kvm.Open();
        var vm = kvm.CreateVm();
        AnonymousMemory? memory = null;
        MemorySlot? slot = null;
        try
        {
            if (manualProtect) vm.EnableManualDirtyLogProtect();
            memory = vm.AllocateMemory(MemorySize);
            memory.Write(CodeGpa, code);
            slot = vm.AddMemorySlot(0, 0, memory, MemorySlotFlags.LogDirtyPages);
            return new DirtyLogVm(kvm, vm, memory, slot, CreateRealModeVcpu(vm));
        }
        catch
        {
            slot?.Dispose();
            memory?.Dispose();
            vm.Dispose();
            kvm.Dispose();
            throw;
        }
    }

    /// <summary>One KVM_RUN to the guest's next HLT (the guest has then written its pages once).</summary>
    public void Run() => RunToHalt(Vcpu);

    /// <summary>vCPU 0 in real mode at <see cref="CodeGpa"/> (every segment based there), as both benchmark VMs start it.</summary>
    internal static Vcpu CreateRealModeVcpu(Vm vm)
    {
        var vcpu = vm.CreateVcpu(0);
        var sregs = vcpu.GetSregs();
        sregs.cs.@base = sregs.ds.@base = sregs.es.@base = sregs.ss.@base = CodeGpa;
        sregs.cs.selector = sregs.ds.selector = sregs.es.selector = sregs.ss.selector = (ushort)(CodeGpa >> 4);
        vcpu.SetSregs(sregs);
        vcpu.SetRegs(new kvm_regs { rip = 0, rflags = 2 });
        return vcpu;
    }

    /// <summary>KVM_RUN until the guest's next HLT (a kick's KVM_EXIT_INTR is run again).</summary>
    internal static void RunToHalt(Vcpu vcpu)
    {
        while (true)
        {
            var exit = vcpu.Run();
            if (exit.Interrupted) continue;
            if (exit.Reason != KvmExitReason.KVM_EXIT_HLT) throw new InvalidOperationException($"expected KVM_EXIT_HLT, got {exit.ToString()}");
            return;
        }
    }

    public void Dispose()
    {
        Vcpu.Dispose();
        Slot.Dispose();
        Memory.Dispose();
        Vm.Dispose();
        Kvm.Dispose();
    }
}

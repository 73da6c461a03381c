// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Abi;
using KvmSharp.Kernel;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// KVM_SET_SIGNAL_MASK (virt/kvm/kvm_main.c kvm_vcpu_ioctl, kvm_vcpu_ioctl_set_sigmask) and what the mask does to a
/// run (kvm_sigset_activate / kvm_sigset_deactivate around KVM_RUN): the signal mask QEMU gives its vCPU threads so that
/// its kick signal, blocked elsewhere, stops the guest. The emulator's side: src/KvmSharp.Emulation/Vcpu/SetSignalMask.cs
/// and RunningVcpus.cs. The signal is IKernel.KickThread's (LinuxKernel.KickSignal), sent until the run returns.
/// </summary>
public static class SignalMaskRules
{
    private const string KvmMain = "virt/kvm/kvm_main.c";
    private const ulong MemSize = 0x10000, Code = 0x1000;
    private const byte DonePort = 0x10;
    private static readonly ulong KickBit = 1UL << (LinuxKernel.KickSignal - 1);

    /// <summary>A hang guard, not a timing assertion.</summary>
    private static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

    [ConformanceCase(KvmMain + " kvm_vcpu_ioctl KVM_SET_SIGNAL_MASK: len must be sizeof(sigset_t) = 8 (EINVAL otherwise, 0 and 16 " +
                     "included), a NULL argument drops the mask, an unreadable header is EFAULT; x86 and arm64 alike")]
    public static void set_signal_mask_checks_its_argument(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        foreach (uint len in new uint[] { 0, 4, 7, 9, 16, 128 })
            Assert.Equal(-(long)Errno.EINVAL, SetMask(ctx, vcpu, len, ~0UL));
        Assert.Equal(0, SetMask(ctx, vcpu, 8, ~0UL));
        Assert.Equal(0, SetMask(ctx, vcpu, 8, 0));
        Assert.Equal(0, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SIGNAL_MASK, 0UL));
        // A small integer is a user address nothing is mapped at.
        Assert.Equal(-(long)Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SIGNAL_MASK, 8UL));
    }

    [ConformanceCase(KvmMain + " kvm_sigset_activate: inside KVM_RUN the thread's mask is the vCPU's — a signal it blocks does not stop " +
                     "the run (the guest reaches its OUT), one it leaves unblocked does (EINTR, KVM_EXIT_INTR); bit n-1 is signal n; " +
                     "KVM_SET_SIGNAL_MASK(NULL) gives the thread its own mask back")]
    public static void signal_mask_decides_which_signals_stop_a_run(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        var mem = vm.AllocateMemory(MemSize);
        vm.AddMemorySlot(0, 0, mem);
        using var vcpu = vm.CreateVcpu();
        // The guest spins for 50 ms of its own TSC, then OUTs: long enough for kicks every 10 ms to reach it.
        uint spin = checked(vcpu.TscKhz * 50);
        mem.Write(Code, Asm(a =>
        {
            var wait = a.CreateLabel();
            var done = a.CreateLabel();
            a.rdtsc();
            a.mov(esi, eax);
            a.mov(edi, edx);
            a.Label(ref wait);
            a.rdtsc();
            a.sub(eax, esi);
            a.sbb(edx, edi);
            a.jnz(done);
            a.cmp(eax, spin);
            a.jb(wait);
            a.Label(ref done);
            a.@out(DonePort, al);
            a.hlt();
        }));

        Assert.Equal("interrupted", RunKicked(ctx, vcpu, mask: null));
        Assert.Equal("out 0x10", RunKicked(ctx, vcpu, mask: KickBit));
        Assert.Equal("interrupted", RunKicked(ctx, vcpu, mask: ~KickBit));
        // Off by one either way would block the kick signal here.
        Assert.Equal("interrupted", RunKicked(ctx, vcpu, mask: (KickBit << 1) | (KickBit >> 1)));
        vcpu.SetRunSignalMask(KickBit);
        vcpu.SetRunSignalMask(null);
        Assert.Equal("interrupted", RunKicked(ctx, vcpu, mask: null, set: false));
    }

    /// <summary>Starts the guest over in real mode at <see cref="Code"/>, runs it once on a thread of its own and kicks
    /// that thread every 10 ms until the run returns.</summary>
    private static string RunKicked(CaseContext ctx, Vcpu vcpu, ulong? mask, bool set = true)
    {
        if (set) vcpu.SetRunSignalMask(mask);
        var s = vcpu.GetSregs();
        s.cs.@base = 0;
        s.cs.selector = 0;
        vcpu.SetSregs(s);
        vcpu.SetRegs(new kvm_regs { rip = Code, rflags = 2, rsp = 0x7000 });
        int tid = 0;
        string? outcome = null;
        Exception? error = null;
        using var started = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            tid = ctx.Kernel.GetTid();
            started.Set();
            try
            {
                var exit = vcpu.Run();
                outcome = exit.Interrupted ? "interrupted"
                    : exit.Reason == KvmExitReason.KVM_EXIT_IO ? $"out 0x{exit.IoPort:x}" : exit.Reason.ToString();
            }
            catch (Exception e)
            {
                error = e;
            }
        }) { IsBackground = true };
        thread.Start();
        started.Wait();
        var deadline = DateTime.UtcNow + HangGuard;
        while (!thread.Join(10))
        {
            ctx.Kernel.KickThread(tid);
            Assert.True(DateTime.UtcNow < deadline, "the vCPU thread never left KVM_RUN");
        }
        if (error is not null) throw new InvalidOperationException("vCPU thread failed", error);
        return outcome!;
    }

    private static long SetMask(CaseContext ctx, Vcpu vcpu, uint len, ulong bits)
    {
        Span<byte> arg = stackalloc byte[4 + 8];
        BinaryPrimitives.WriteUInt32LittleEndian(arg, len);
        BinaryPrimitives.WriteUInt64LittleEndian(arg[4..], bits);
        return ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_SIGNAL_MASK, arg);
    }

    private static byte[] Asm(Action<Assembler> program)
    {
        var a = new Assembler(16);
        program(a);
        using var stream = new MemoryStream();
        a.Assemble(new StreamCodeWriter(stream), Code);
        return stream.ToArray();
    }
}

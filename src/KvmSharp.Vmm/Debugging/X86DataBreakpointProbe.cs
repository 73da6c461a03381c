// SPDX-License-Identifier: MIT
using System.Runtime.CompilerServices;
using KvmSharp.Abi;
using KvmSharp.Kernel;

namespace KvmSharp.Vmm.Debugging;

/// <summary>
/// Whether a kernel raises x86 data breakpoints for KVM_GUESTDBG_USE_HW_BP — on VMX/SVM hardware KVM loads the host's
/// DR0–DR3/DR7 and intercepts the #DB (x86.c kvm_update_dr0123/kvm_update_dr7; svm.c db_interception, vmx.c
/// handle_exception_nmi: KVM_EXIT_DEBUG, exception 1, the B bit in dr6); a kernel that runs guest instructions through
/// KVM's emulator (this host's kvm_pvm) raises none. Asked once per kernel and remembered: a one-page real-mode VM
/// whose only instruction stores a byte at an address DR0 watches for writes, then HLT; a KVM_EXIT_DEBUG with B0 says
/// yes. The VM, its memory and vCPU are disposed before the answer returns.
/// </summary>
internal static class X86DataBreakpointProbe
{
    private const ulong Watched = 0x100;

    // MOV moffs8, AL (A2 with a 16-bit offset: Intel SDM Vol. 2B MOV) to [0x100] (Watched), then HLT (F4).
    private static readonly byte[] Code = [0xA2, 0x00, 0x01, 0xF4];

    private static readonly ConditionalWeakTable<IKernel, StrongBox<bool>> Answers = new();

    /// <summary>True when <paramref name="kvm"/>'s kernel raised the probe's write breakpoint.</summary>
    public static bool Raises(Kvm kvm) => Answers.GetValue(kvm.Kernel, _ => new StrongBox<bool>(Probe(kvm))).Value;

    private static bool Probe(Kvm kvm)
    {
        try
        {
            using var vm = kvm.CreateVm();
            using var memory = vm.AllocateMemory(0x1000);
            memory.Write(0, Code);
            using var slot = vm.AddMemorySlot(0, 0, memory);
            using var vcpu = vm.CreateVcpu(0);
            kvm_sregs sregs = vcpu.GetSregs();
            sregs.cs.@base = 0;
            sregs.cs.selector = 0;
            sregs.ds.@base = 0;
            sregs.ds.selector = 0;
            vcpu.SetSregs(sregs);
            kvm_regs regs = vcpu.GetRegs();
            regs.rip = 0;
            regs.rflags = 2;
            vcpu.SetRegs(regs);
            Span<ulong> debug = stackalloc ulong[Vcpu.GuestDebugRegisterCount];
            debug[0] = Watched;
            debug[7] = 0x400 | 1 | (1UL << 16); // L0, RW0 = 01 (write), LEN0 = 00 (one byte): SDM Vol. 3A 18.2.4
            vcpu.SetGuestDebug(GuestDebugFlags.Enable | GuestDebugFlags.UseHardwareBreakpoints, debug);
            VcpuExit exit = vcpu.Run();
            return exit.Reason == KvmExitReason.KVM_EXIT_DEBUG && exit.DebugException == 1 && (exit.DebugDr6 & 1) != 0;
        }
        catch (KvmException)
        {
            return false; // no VM to probe with: offer no watchpoints
        }
    }
}

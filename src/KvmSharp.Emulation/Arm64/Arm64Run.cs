// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;
using KvmSharp.Emulation.Vcpu;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run with <see cref="A64Interpreter"/> in the role of guest entry, and
/// handle_exit for the exits it produces. Signals (IKernel.KickThread) and immediate_exit behave as on x86.
/// </summary>
internal static class Arm64Run
{
    public static long Run(KvmVcpu vcpu, Arm64VcpuState state)
    {
        var kernel = vcpu.Kvm.Kernel;
        kernel.EnterRun(vcpu);
        vcpu.EnterRun();
        try
        {
            return RunLocked(vcpu, state);
        }
        finally
        {
            vcpu.LeaveRun();
            kernel.LeaveRun(vcpu);
        }
    }

    private static long RunLocked(KvmVcpu vcpu, Arm64VcpuState state)
    {
        var run = vcpu.Run;
        // "if (run->exit_reason == KVM_EXIT_MMIO) { ret = kvm_handle_mmio_return(vcpu); … }": before immediate_exit.
        if (run.ExitReason == (uint)KvmExitReason.KVM_EXIT_MMIO) CompleteMmio(vcpu, state);
        // "if (!vcpu->wants_to_run) { ret = -EINTR; goto out; }" — exit_reason is left as it was.
        if (run.ImmediateExit) return Err.EINTR;
        run.ExitReason = (uint)KvmExitReason.KVM_EXIT_UNKNOWN;
        while (true)
        {
            // xfer_to_guest_mode_handle_work → kvm_handle_signal_exit: KVM_EXIT_INTR, -EINTR.
            if (vcpu.SignalPending)
            {
                run.ExitReason = (uint)KvmExitReason.KVM_EXIT_INTR;
                return Err.EINTR;
            }
            // check_vcpu_requests → KVM_REQ_SLEEP: a stopped vCPU sleeps until it is made runnable or signalled.
            if (state.Stopped)
            {
                WaitForSignal(vcpu);
                continue;
            }
            vcpu.PollQuiesce();
            long? rc = Enter(vcpu, state);
            if (rc is long r) return r;
        }
    }

    /// <summary>One guest instruction and its exit handling; a value ends KVM_RUN with it.</summary>
    private static long? Enter(KvmVcpu vcpu, Arm64VcpuState state)
    {
        var run = vcpu.Run;
        try
        {
            switch (state.Interpreter.Step())
            {
                case A64Outcome.Hvc:
                    return HandleHvc(vcpu, state);
                case A64Outcome.Wfi:
                    // kvm_vcpu_wfi → kvm_vcpu_halt: no interrupt source is modelled, so only a signal wakes it.
                    WaitForSignal(vcpu);
                    return null;
                default:
                    return null;
            }
        }
        catch (MmioStop m)
        {
            // io_mem_abort: a write kvm_io_bus_write(KVM_MMIO_BUS) takes (an ioeventfd) is handled in the kernel:
            // kvm_handle_mmio_return steps over the store, no exit.
            if (m.Syndrome.IsWrite && vcpu.Kvm.IoBus.Write(KvmMain.KvmBus.Mmio, vcpu, m.Syndrome.Ipa, m.Syndrome.Length, m.Syndrome.WriteData))
            {
                state.Cpu.Pc += 4;
                return null;
            }
            // io_mem_abort: run->mmio.{is_write, phys_addr, len}, data for a write; vcpu->mmio_needed = 1.
            byte[] data = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(data, m.Syndrome.WriteData);
            run.SetMmioExit(m.Syndrome.Ipa, data.AsSpan(0, m.Syndrome.Length), m.Syndrome.Length, m.Syndrome.IsWrite);
            if (!m.Syndrome.IsWrite) run.MmioData(8).Clear();
            state.PendingMmio = m.Syndrome;
            return 0;
        }
        catch (RunErrorStop e)
        {
            if (e.MemoryFaultExit)
                run.SetMemoryFault(e.Ipa & ~((ulong)EmulatorConfig.PageSize - 1), (ulong)EmulatorConfig.PageSize, false, e.Userfault);
            return e.Errno;
        }
        catch (UnsupportedInstructionStop u)
        {
            // Emulator-only exit (real hardware would execute the instruction): KVM_EXIT_INTERNAL_ERROR with
            // suberror KVM_INTERNAL_ERROR_EMULATION and the four instruction bytes; PC stays at the instruction.
            byte[] bytes = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(bytes, u.Instruction);
            run.SetEmulationFailure(bytes);
            return 0;
        }
    }

    /// <summary>
    /// handle_hvc → the PV-time SMCCC calls (Arm64PvTime), else PSCI; a system event stops every vCPU of the VM
    /// (kvm_prepare_system_event).
    /// </summary>
    private static long? HandleHvc(KvmVcpu vcpu, Arm64VcpuState state)
    {
        if (Arm64PvTime.Hypercall(vcpu, state)) return null;
        bool psci02 = (state.Features & (1u << Abi.Arm64.KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2)) != 0;
        var fw = Arm64VmState.Of(vcpu.Kvm).Firmware;
        ulong version;
        lock (fw) version = Arm64FwRegs.PsciVersion(fw, psci02);
        if (Psci.Call(state.Cpu, version, out uint type) == HvcResult.Continue) return null;
        lock (vcpu.Kvm.Kernel.SyncRoot)
        {
            foreach (var other in vcpu.Kvm.Vcpus) Arm64VcpuState.Of(other).Stopped = true;
        }
        WriteSystemEvent(vcpu, type);
        return 0;
    }

    /// <summary>
    /// kvm_prepare_system_event: memset(&amp;run->system_event, 0), type, ndata = 1, data[0] = flags (0). Written
    /// through the kvm_run memfd, the same page userspace has mapped.
    /// </summary>
    private static void WriteSystemEvent(KvmVcpu vcpu, uint type)
    {
        Span<byte> ev = stackalloc byte[8 + 16 * 8];
        ev.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(ev, type);
        BinaryPrimitives.WriteUInt32LittleEndian(ev[4..], 1);
        _ = HostMemory.Pwrite(vcpu.Run.MemfdFd, ev, KvmRunLayout.system_event_type);
        vcpu.Run.ExitReason = (uint)KvmExitReason.KVM_EXIT_SYSTEM_EVENT;
    }

    /// <summary>
    /// mmio.c kvm_handle_mmio_return: nothing pending → nothing to do; a read takes run->mmio.data (sign-extended if
    /// SSE, truncated to 32 bits without SF) into Rt; both advance PC past the instruction (kvm_incr_pc).
    /// </summary>
    private static void CompleteMmio(KvmVcpu vcpu, Arm64VcpuState state)
    {
        if (state.PendingMmio is not MmioSyndrome m) return;
        state.PendingMmio = null;
        if (!m.IsWrite)
        {
            ulong data = A64Interpreter.ReadLittleEndian(vcpu.Run.MmioData(m.Length));
            state.Cpu.SetReg(m.Rt, A64Interpreter.Extend(data, m.Length, m.SignExtend, m.Sf));
        }
        state.Cpu.Pc += 4;
    }

    /// <summary>A blocked vCPU (WFI, stopped): only a signal ends the wait, like a task sleeping interruptibly.</summary>
    private static void WaitForSignal(KvmVcpu vcpu)
    {
        while (!vcpu.SignalPending)
        {
            // Asleep, the vCPU touches no memory: answer invalidations so a munmap does not wait for a signal.
            vcpu.PollQuiesce();
            Thread.Sleep(1);
        }
    }
}

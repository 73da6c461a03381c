// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>
/// Stops a runaway guest after a wall-clock limit. QEMU and Firecracker set kvm_run.immediate_exit and send the vCPU
/// thread a signal; the SDK has no way to signal a thread yet (a Vcpu.Kick is requested of the SDK), so the watchdog
/// does the two things safe code can do: it sets immediate_exit (so a vCPU between two KVM_RUNs does not re-enter)
/// and it punches every page of the guest_memfd. The punch invalidates KVM's mappings of those pages, which flushes
/// the TLBs of running vCPUs with an IPI that kicks them out of guest mode; back in the guest, the page tables are
/// zeros, so the next fetch faults and, with no IDT, ends in a triple fault: KVM_RUN returns. The run loop sees
/// <see cref="Fired"/> and reports <see cref="GuestOutcome.Timeout"/>. The guest's memory is gone, so the micro-VM is
/// faulted until <see cref="MicroVm.Reset"/> (which punches anyway).
/// Deleting the memory slot also kicks the vCPU, but on kvm_pvm the first entry after re-adding a deleted slot
/// triple-faults, so a timed-out VM could not be reused reliably; the punch leaves the slot alone.
/// </summary>
internal sealed class Watchdog : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Vcpu _vcpu;
    private readonly GuestMemory _memory;
    private ITimer? _timer;
    private bool _armed;
    private volatile bool _fired;

    public Watchdog(Vcpu vcpu, GuestMemory memory)
    {
        _vcpu = vcpu;
        _memory = memory;
    }

    /// <summary>True once the limit elapsed during the current arming.</summary>
    public bool Fired => _fired;

    public void Arm(TimeSpan timeout)
    {
        lock (_gate)
        {
            _fired = false;
            _armed = true;
        }
        if (timeout != Timeout.InfiniteTimeSpan)
            _timer = TimeProvider.System.CreateTimer(static state => ((Watchdog)state!).Fire(), this, timeout, Timeout.InfiniteTimeSpan);
    }

    /// <summary>After this returns the watchdog will not touch the vCPU or the memory (a late timer callback sees it disarmed).</summary>
    public void Disarm()
    {
        lock (_gate)
        {
            _armed = false;
        }
        _timer?.Dispose();
        _timer = null;
    }

    /// <summary>Stops the guest now, as if the limit had elapsed.</summary>
    public void Fire()
    {
        lock (_gate)
        {
            if (!_armed || _fired) return;
            _fired = true;
            _vcpu.ImmediateExit = true;
            _memory.Discard();
        }
    }

    public void Dispose() => Disarm();
}

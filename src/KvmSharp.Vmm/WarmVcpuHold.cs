// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm;

/// <summary>
/// One idle VM with one vCPU, held so that creating and destroying micro-VMs one after another does not make the host
/// kernel patch its own code twice per micro-VM.
/// <para>
/// A micro-VM's vCPU has no in-kernel local APIC. Linux counts such vCPUs in a static key: the first one to exist
/// enables it and the last one to go disables it (arch/x86/kvm/lapic.c kvm_create_lapic: <c>static_branch_inc(&amp;
/// kvm_has_noapic_vcpu)</c>, kvm_free_lapic: <c>static_branch_dec</c>; not deferred, unlike the APIC's own keys).
/// Each flip rewrites kernel text and interrupts every CPU (text_poke, smp_call_function_many_cond). With no other
/// such vCPU on the host, every create + call + teardown flips it twice: on this machine (kvm_pvm, 6.18) that was
/// 0.45–0.65 ms of a 1.3–1.55 ms cycle, for C and C# alike (benchmarks' lifecycle-probe, session 19). While this hold lives the count never reaches zero.
/// </para>
/// <para>
/// Worth it for a process that creates micro-VMs one after another (a service, a test run); pointless while a
/// <see cref="MicroVmPool"/> or any other live micro-VM holds a vCPU anyway. The key is host-wide: the hold also
/// spares other processes' VMMs the flips. It costs two descriptors (the VM and the vCPU), the vCPU's kvm_run mapping
/// and a few pages of kernel memory; the vCPU never runs. A kernel without the key (one that always creates the
/// APIC) gains nothing and loses nothing but that.
/// </para>
/// </summary>
public sealed class WarmVcpuHold : IDisposable
{
    private readonly Vm _vm;
    private readonly Vcpu _vcpu;

    private WarmVcpuHold(Vm vm, Vcpu vcpu)
    {
        _vm = vm;
        _vcpu = vcpu;
    }

    /// <summary>Creates the idle VM and its vCPU on <paramref name="kvm"/> (they outlive a later dispose of <paramref name="kvm"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="kvm"/> is null.</exception>
    /// <exception cref="KvmSharp.Kernel.KvmException">KVM_CREATE_VM or KVM_CREATE_VCPU failed (nothing is left open).</exception>
    public static WarmVcpuHold Acquire(Kvm kvm)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        Vm vm = kvm.CreateVm();
        try
        {
            return new WarmVcpuHold(vm, vm.CreateVcpu(0));
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>Closes the vCPU and the VM: the next micro-VM teardown may flip the key again.</summary>
    public void Dispose()
    {
        _vcpu.Dispose();
        _vm.Dispose();
    }
}

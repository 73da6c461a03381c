// SPDX-License-Identifier: MIT
// VM creation and destruction (virt/kvm/kvm_main.c).
using KvmSharp.Emulation.KvmMain;
using KvmSharp.Emulation.Vfs;

namespace KvmSharp.Emulation;

public sealed partial class EmulatedKernel
{
    /// <summary>kvm_dev_ioctl_create_vm: kvm_arch_init_vm validates the type, then the VM fd is installed.</summary>
    internal long CreateVm(ulong type)
    {
        if (!_fds.HasRoom) return Err.EMFILE;
        long r = Arch.InitVm(type, out var archState);
        if (r != 0) return r;
        var kvm = new Kvm(this, type, archState);
        _vms.Add(kvm);
        return _fds.Install(new KvmVmFile(kvm));
    }

    internal void OnVmDestroyed(Kvm kvm) => _vms.Remove(kvm);
}

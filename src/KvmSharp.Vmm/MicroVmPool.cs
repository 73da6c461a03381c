// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Loader;

namespace KvmSharp.Vmm;

/// <summary>
/// Pre-created micro-VMs of one image. <see cref="Rent"/> hands out a ready VM; <see cref="Return"/> resets it
/// (<see cref="MicroVm.Reset"/>: every page of its guest_memfd freed by a punch and the image reloaded, or every page of
/// its host memory changed since its first reset rewritten with its bytes from then or zeros) instead of destroying it, so the
/// next user pays for a discard and a reload, or a restore of the pages the last user changed, rather than for KVM_CREATE_VM, new guest memory, a slot and a vCPU. Every micro-VM of a pool has the
/// backing <see cref="MicroVmOptions.Memory"/> asks for. Not thread-safe.
/// </summary>
public sealed class MicroVmPool : IDisposable
{
    private readonly Stack<MicroVm> _idle = new();
    private readonly GuestImage _image;
    private readonly MicroVmOptions _options;
    private bool _disposed;

    public MicroVmPool(GuestImage image, MicroVmOptions options, int size)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        _image = image;
        _options = options;
        try
        {
            for (int i = 0; i < size; i++) _idle.Push(MicroVm.Create(image, options));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public int Idle => _idle.Count;

    /// <summary>A ready micro-VM: an idle one, or a new one when none is idle.</summary>
    public MicroVm Rent()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _idle.TryPop(out MicroVm? vm) ? vm : MicroVm.Create(_image, _options);
    }

    /// <summary>Resets <paramref name="vm"/> (discard + reload, or restore of the changed pages) and keeps it for the next <see cref="Rent"/>.</summary>
    public void Return(MicroVm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (_disposed || !ReferenceEquals(vm.Image, _image))
        {
            vm.Dispose();
            return;
        }
        try
        {
            vm.Reset();
        }
        catch
        {
            vm.Dispose();
            throw;
        }
        _idle.Push(vm);
    }

    public void Dispose()
    {
        _disposed = true;
        while (_idle.TryPop(out MicroVm? vm)) vm.Dispose();
    }
}

// SPDX-License-Identifier: MIT
namespace KvmSharp.Conformance.Guests;

/// <summary>
/// What a test guest's <c>Create</c> opens (VM, launch context, memory, slots, vCPU …), disposed newest first: by
/// <c>Create</c> itself when a later step throws, else by the guest's <c>Dispose</c>. A slot goes before its memory
/// and the VM last, as a VMM tears them down.
/// </summary>
internal sealed class OwnedResources : IDisposable
{
    private readonly Stack<IDisposable> _items = new();

    /// <summary>Takes ownership of <paramref name="item"/> and returns it.</summary>
    public T Add<T>(T item) where T : IDisposable
    {
        _items.Push(item);
        return item;
    }

    public void Dispose()
    {
        while (_items.Count > 0) _items.Pop().Dispose();
    }
}

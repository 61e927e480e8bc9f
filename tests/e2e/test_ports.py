"""Loopback port allocation: distinct, free, bindable ports."""

import socket

from e2e.ports import LOOPBACK, PortAllocator, is_port_free


def test_ports_are_distinct_and_bindable() -> None:
    allocator = PortAllocator()
    ports = allocator.take_many(20)
    assert len(set(ports)) == 20
    assert allocator.given == frozenset(ports)
    for port in ports:
        assert is_port_free(port)


def test_busy_port_is_reported_busy() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not is_port_free(port)
    assert is_port_free(port)


def test_avoided_ports_are_never_handed_out() -> None:
    first = PortAllocator().take_many(5)
    allocator = PortAllocator(avoid=first)
    assert not set(allocator.take_many(30)) & set(first)


def test_port_with_only_closed_connections_counts_as_free() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection((LOOPBACK, port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end lingers in TIME_WAIT
        client.close()
    assert is_port_free(port)

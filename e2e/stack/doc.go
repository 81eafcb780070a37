// Package stack is test support for Tether's whole-stack tests and its
// benchmark (e2e, e2e/replicas, e2e/cmd/tether-bench): it runs the real
// tether and devprovider commands as processes on loopback.
//
// Build compiles the two commands once into a directory. Start runs a
// child process in its own process group with its output collected;
// Binaries.StartDevProvider and Binaries.StartTether start the two commands
// on free ports and wait until they serve. A Proc stops gracefully (Stop)
// or at once (Kill, kill -9 of its group). FreeAddr and RandomKey supply
// ports and keys. Redis is a real redis-server from bff/vault/redistest;
// the dev provider's /control/ API is devprovider.Controls.
//
// Nothing that Tether ships imports this package.
package stack

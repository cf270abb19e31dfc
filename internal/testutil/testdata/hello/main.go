// Command hello is a tiny program the testutil tests build.
package main

func main() {}

// CoreDNS with only the plugins the local cluster's Corefile uses
// (scripts/lib/components.sh): the full build compiles every cloud
// provider's SDK and takes twice as long. A plugin added to the Corefile
// must be added here too: CoreDNS refuses a Corefile naming an unknown one.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which the plugins handle a query: upstream's order
// (core/dnsserver/zdirectives.go) restricted to these.
func init() {
	dnsserver.Directives = []string{"bind", "ready", "health", "errors", "cache", "kubernetes", "forward"}
}

func main() {
	coremain.Run()
}

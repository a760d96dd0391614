package multicast

import (
	"fmt"
	"net"
	"net/url"
)

// InterfaceTowards returns the name of the network interface this machine
// reaches the server at serverURL through (the one udp-receiver must
// listen on when a machine has several).
func InterfaceTowards(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("multicast: server URL %q has no host", serverURL)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	// A UDP "connection" sends nothing: it only asks the kernel for the
	// route, and so the local address.
	c, err := net.Dial("udp4", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return "", fmt.Errorf("multicast: no route to %s: %w", u.Hostname(), err)
	}
	local := c.LocalAddr().(*net.UDPAddr).IP
	c.Close()
	ifs, err := net.Interfaces()
	if err != nil {
		return "", fmt.Errorf("multicast: list interfaces: %w", err)
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(local) {
				return ifc.Name, nil
			}
		}
	}
	return "", fmt.Errorf("multicast: no interface has the address %s the route to %s leaves from", local, u.Hostname())
}

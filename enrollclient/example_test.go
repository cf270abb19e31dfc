package enrollclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/clearinghouse-dev/caddy-clearinghouse/enrollclient"
)

// Enroll a gateway, waiting up to five minutes for an administrator.
func ExampleClient_Enroll() {
	c := &enrollclient.Client{
		ServerURL:     "https://enroll.example.com/",
		CAFingerprint: "E6:2C:92:1F:97:85:94:BF:D3:FD:24:FB:46:D4:91:1F:51:10:4F:03:9D:F8:80:C4:94:3E:34:A6:C7:0F:23:08",
		DeviceName:    "gw1.example.com",
		DeviceID:      "134217728",
		Customer:      "0",
		Username:      "acme",
		Password:      os.Getenv("CHCLIENT_PASSWORD"),
		Dir:           "/etc/chclient",
		MaxWait:       5 * time.Minute,
		Progress: func(attempt int, next time.Duration, lastErr error) {
			if lastErr != nil {
				log.Printf("retrieve failed (%v); retrieve %d in %s", lastErr, attempt, next)
				return
			}
			log.Printf("pending; retrieve %d in %s", attempt, next)
		},
	}
	res, err := c.Enroll(context.Background())
	var rej *enrollclient.RejectedError
	switch {
	case errors.Is(err, enrollclient.ErrPendingTimeout):
		fmt.Println("still pending; run again later")
	case errors.As(err, &rej):
		fmt.Println("refused:", rej.Status, rej.Reason)
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println("enrolled until", res.Certificate.NotAfter)
	}
}

// Renew from cron: nothing happens until the last third of the lifetime.
func ExampleClient_Renew() {
	c := &enrollclient.Client{
		ServerURL: "https://enroll.example.com/",
		DeviceID:  "134217728", Customer: "0", Username: "acme",
		Password: os.Getenv("CHCLIENT_PASSWORD"),
		Dir:      "/etc/chclient", // ca.pem pins the CA; cert.pem names the device
	}
	renewed, res, err := c.Renew(context.Background(), false)
	if err != nil {
		log.Fatal(err)
	}
	if !renewed {
		fmt.Println("not due before", res.RenewAt)
	}
}

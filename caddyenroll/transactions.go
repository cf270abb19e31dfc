package caddyenroll

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/clearinghouse-dev/caddy-clearinghouse/osp"
)

// Authorizations take their transaction ids from an osp.TransactionIDs
// whose key every instance sharing the storage reads, so that a usage
// record says whether its transaction is one this clearinghouse
// authorized (CDR.TransactionIssued):
//
//	clearinghouse/osp/transaction.key   (32 random bytes)

func transactionKeyKey() string { return path.Join("clearinghouse", "osp", "transaction.key") }

const transactionKeyLock = "clearinghouse_osp_transaction_key"

// transactionIDs returns the maker of transaction ids, creating its key in
// storage the first time.
func (a *App) transactionIDs(ctx context.Context) (*osp.TransactionIDs, error) {
	a.authz.txMu.Lock()
	defer a.authz.txMu.Unlock()
	if a.authz.txIDs != nil {
		return a.authz.txIDs, nil
	}
	key, err := a.storage.Load(ctx, transactionKeyKey())
	if errors.Is(err, fs.ErrNotExist) {
		key, err = a.createTransactionKey(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("transaction id key %s: %v", transactionKeyKey(), err)
	}
	ids, err := osp.NewTransactionIDs(key)
	if err != nil {
		return nil, fmt.Errorf("transaction id key %s: %d bytes, want %d (delete it to make a new one; records of earlier transactions then read as not issued here)",
			transactionKeyKey(), len(key), osp.TransactionKeySize)
	}
	a.authz.txIDs = ids
	return ids, nil
}

// createTransactionKey writes a new key unless another instance did first.
func (a *App) createTransactionKey(ctx context.Context) ([]byte, error) {
	if err := a.storage.Lock(ctx, transactionKeyLock); err != nil {
		return nil, err
	}
	defer a.storage.Unlock(context.WithoutCancel(ctx), transactionKeyLock)
	key, err := a.storage.Load(ctx, transactionKeyKey())
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, osp.TransactionKeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	if err := a.storage.Store(ctx, transactionKeyKey(), key); err != nil {
		return nil, err
	}
	return key, nil
}

import { useEffect } from 'react';
import { useConsole } from '../context';
import type { Toast } from '../stores';

const LIFETIME_MS: Record<Toast['level'], number> = { info: 5000, success: 8000, error: 12000 };

function ToastItem({ toast, dismiss }: { toast: Toast; dismiss: (id: number) => void }) {
  const { id, level } = toast;
  useEffect(() => {
    const t = setTimeout(() => dismiss(id), LIFETIME_MS[level]);
    return () => clearTimeout(t);
  }, [id, level, dismiss]);
  const onClose = () => dismiss(id);
  return (
    <div className={`toast toast-${toast.level}`} data-testid="toast" role={toast.level === 'error' ? 'alert' : 'status'}>
      <div className="toast-body">
        <div className="toast-title">{toast.title}</div>
        <div className="toast-message">{toast.message}</div>
      </div>
      <button type="button" className="toast-close" aria-label="Dismiss" onClick={onClose}>
        ×
      </button>
    </div>
  );
}

/** Stack of notifications, bottom right. */
export function Toasts() {
  const toasts = useConsole((s) => s.toasts);
  const dismiss = useConsole((s) => s.dismissToast);
  return (
    <div className="toasts" data-testid="toasts">
      {toasts.map((t) => (
        <ToastItem key={t.id} toast={t} dismiss={dismiss} />
      ))}
    </div>
  );
}

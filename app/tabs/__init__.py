"""one module per page"""
